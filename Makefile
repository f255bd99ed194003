# rlsweep developer and user entry points. `make sweep` alone sets up and runs the demo sweep.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXP ?= cartpole_ppo
RESULTS ?= results
SEEDS ?= 5

.PHONY: setup test lint bench clean

setup: $(VENV)/.installed

# torch is pinned before anything else so pip takes the local CPU wheel instead of
# pulling several GB of CUDA packages for a newer release.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/ppo_cartpole.py --seeds $(SEEDS)

clean:
	rm -rf $(RESULTS) .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
