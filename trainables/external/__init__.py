"""External simulators as an experience source: simulators that own their clock call a
policy server over HTTP (`server.py`), and each connected episode is a slot of a vector env
(`vector_env.py`) that a rollout worker steps like any other, so learners never know."""
