# The README's commands. Each creates .venv with the CPU build of torch when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICK ?=
OUT ?= outputs

.PHONY: demo test test-all bench retrain pretrain lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	# PySceneDetect, which the curate splitter is tested against, requires the GUI build of
	# OpenCV, whose cv2 would replace the headless one (and its 5.x has no face cascades).
	$(PY) -m pip install --quiet --no-deps "scenedetect>=0.6.4,<0.8" "click>=8" platformdirs
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cosmos_env demo out=$(OUT)/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

test-all: lint
	$(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(PY) benchmarks/gt_env_speed.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/expert_success.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/tokenizer_rd.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/fidelity.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/env_speed.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/bridge_convert.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/store_faults.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/backends.py --out $(OUT)/bench
	$(PY) benchmarks/policy_eval.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/train_in_world_model.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/worlds.py $(if $(QUICK),--quick) --out $(OUT)/bench
	$(PY) benchmarks/world_ranking.py --checkpoint diffusion-reacher $(if $(QUICK),--quick) --out $(OUT)/bench

# Reproduce the shipped tokenizer + push world model from nothing (about 55 min on 2 cores).
retrain: $(STAMP)
	$(PY) -m cosmos_env retrain out=$(OUT)/retrain

# A world foundation model from nothing: corpus, general tokenizer, action-free base (<= 3 h on
# 2 cores); re-run after an interruption to go on where it stopped. QUICK=1: a 5% corpus and
# minutes of training, to see every stage run.
PRETRAIN_QUICK := 'corpus_overrides=["scale=0.05"]' tokenizer_minutes=1 base_minutes=2
pretrain: $(STAMP)
	$(PY) -m cosmos_env pretrain out=$(OUT)/pretrain$(if $(QUICK),-quick) $(if $(QUICK),$(PRETRAIN_QUICK))

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(OUT)
