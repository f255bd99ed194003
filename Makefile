# rlsweep developer and user entry points. `make sweep` alone sets up and runs the demo sweep.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXP ?= cartpole_ppo
RESULTS ?= results
SEEDS ?= 5

# Optional extras to install too: `make setup EXTRAS=box2d,mujoco` (box2d, mujoco, atari, all; dashboard).
EXTRAS ?=
# What the test suite runs envs from; `make test` installs them.
TEST_EXTRAS ?= box2d,mujoco,atari,minigrid,zoo,dashboard,multiagent,external,offline
comma := ,

ALGO ?= PPO
ENV ?= CartPole-v1
ARGS ?=

.PHONY: setup sweep train tensorboard mlflow-ui test lint bench clean datasets

setup: $(VENV)/.installed $(if $(EXTRAS),$(VENV)/.extras-$(subst $(comma),-,$(EXTRAS)))

# torch is pinned before anything else so pip takes the local CPU wheel instead of
# pulling several GB of CUDA packages for a newer release.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

$(VENV)/.extras-%: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[$(subst -,$(comma),$*)]"
	touch $@

# The main job: a small sweep with embedded defaults (local Ray, Optuna study in SQLite,
# TensorBoard files under $(RESULTS)). `make sweep EXP=pendulum_ppo ARGS="--num-samples 16"`.
sweep: setup
	$(BIN)/rlsweep sweep $(EXP) --results-dir $(RESULTS) $(ARGS)

# One trial with a fixed config: `make train ALGO=PPO ENV=Pendulum-v1 ARGS="--set lr=1e-3"`.
train: setup
	$(BIN)/rlsweep train --algo $(ALGO) --env $(ENV) --results-dir $(RESULTS) $(ARGS)

# Serve the latest sweep's TensorBoard files / the MLflow UI on the sweeps' tracking store.
tensorboard: setup
	$(BIN)/rlsweep tensorboard $(RESULTS)

mlflow-ui: setup
	$(BIN)/rlsweep ui $(RESULTS)

# Test files run on TEST_WORKERS processes (pytest-xdist), each with its own local Ray: most of
# the suite waits on Ray starts, subprocess CLIs and servers, so two run in about 2/3 of the time.
TEST_WORKERS ?= 2

test:
	$(MAKE) setup EXTRAS=$(TEST_EXTRAS)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/ppo_cartpole.py --seeds $(SEEDS)
	$(BIN)/python benchmarks/sweep_cartpole.py

# The offline experiments' datasets (experiments/offline/README.md), recorded from hand-written
# experts and random policies; nothing is downloaded. `make sweep EXP=pendulum_iql` then trains from them.
DATA := experiments/offline/datasets
RECORD = $(BIN)/rlsweep record --output $(DATA)/$(1).npz $(2)
CARTPOLE := --env CartPole-v1 --ref-min-score 21 --ref-max-score 500
PENDULUM := --env Pendulum-v1 --ref-min-score -1200 --ref-max-score -132
EXPERTS := examples.offline.controllers
# medium-replay: the replay buffer of SAC trained until its last 10 episodes average the medium
# dataset's return (about -530): minutes of training, not seconds.
REPLAY_UNTIL_MEDIUM := --target-return -530 --seed 4 --set 'hidden_sizes=[64,64]' --set batch_size=128 --set timesteps_per_iteration=200
datasets: setup
	$(call RECORD,cartpole-expert,$(CARTPOLE) --policy $(EXPERTS):cartpole_expert --episodes 20 --seed 1)
	$(call RECORD,cartpole-medium,$(CARTPOLE) --policy $(EXPERTS):cartpole_expert --epsilon 0.5 --episodes 50 --seed 2)
	$(call RECORD,cartpole-random,$(CARTPOLE) --policy random --episodes 200 --seed 3)
	$(call RECORD,pendulum-expert,$(PENDULUM) --policy $(EXPERTS):pendulum_expert --episodes 50 --seed 1)
	$(call RECORD,pendulum-medium,$(PENDULUM) --policy $(EXPERTS):pendulum_expert --epsilon 0.5 --episodes 100 --seed 2)
	$(call RECORD,pendulum-random,$(PENDULUM) --policy random --episodes 100 --seed 3)
	$(BIN)/python -m rlsweep.trainables.offline.replay $(PENDULUM) $(REPLAY_UNTIL_MEDIUM) --output $(DATA)/pendulum-medium-replay.npz

clean:
	rm -rf $(RESULTS) .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
