"""Stage 5, sample: per-word images from a trained word-conditioned DDPM with classifier-free guidance.

`samplers` holds the guided DDPM/DDIM loops (diffusers schedulers do the update steps), `grid` the contact grid,
`words` which words are drawn (light: the workflow imports it when it builds the DAG), `stage` the per-word stage
function the workflow's script calls.
"""
