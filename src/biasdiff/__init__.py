"""biasdiff: the library behind the bias-begets-bias Snakemake workflow.

One subpackage per stage (synth, manifest, embed, train, sample, audit, ...). Nothing here imports Snakemake:
the workflow's scripts are thin adapters around these functions.
"""

__version__ = "0.1.0"
