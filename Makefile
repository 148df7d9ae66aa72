# make demo   build .venv if needed, run the whole workflow on config.yaml, build the HTML report, print its path
# make test   build .venv if needed, then snakefmt --check, snakemake --lint and the test suite (tests/test_slurm.py
#             brings up a throwaway SLURM when the machine allows it: root + apt-get; otherwise it is skipped and the
#             skip and its reason show in the pytest summary)
# make venv   only (re)build .venv: reinstalls whenever requirements.txt, requirements.lock or pyproject.toml change

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.biasdiff-installed
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH_PIP_ARGS ?=
CORES ?= all

# Scripts run by Snakemake must find this venv's python first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test venv lint clean-results

venv: $(STAMP)

# torch goes in first and pinned: without it, some packages pull a multi-GB CUDA build. An existing .venv is
# re-synced in place (pip install of the new pins), not deleted.
$(STAMP): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$$(grep -E '^torch==' requirements.txt)"
	$(BIN)/python -m pip install --quiet -r requirements.txt -c requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@if [ -f results/experiment/summary.md ]; then echo; cat results/experiment/summary.md; fi
	@echo; echo "The base model's own audit (results/audit/sample_bias.parquet):"; cat results/audit/sample_bias.md
	@echo; echo "figures: results/audit/*.png, results/embeddings/bias.png, results/manifest/contact_*.png"
	@echo "report: $(abspath results/report.html)"

lint: $(STAMP)
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --cores 1

test: lint
	$(BIN)/python -m pytest

clean-results:
	rm -rf results .snakemake
