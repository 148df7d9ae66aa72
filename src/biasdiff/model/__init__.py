"""The word-conditioned DDPM every stage shares: the UNet and its noise schedule (`unet`: build, save with
`save_pretrained`, `load_model_dir`), the model-directory contract (`directory`: light imports, the workflow checks
model directories with it while it builds the DAG), guided sampling with samplers by name (`sampling`) and the
one uint8 <-> [-1, 1] pixel convention (`pixels`)."""
