"""Experiments: sweeps described as data (YAML files, `shipped/` holds ours) and the
pipeline that turns one into a Ray Tune run, tracked in MLflow and TensorBoard."""
