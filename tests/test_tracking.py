"""What a sweep leaves in MLflow and TensorBoard, read back with their own clients."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import TINY_SWEEP, free_port
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlsweep.cli import main


def _client(sweep_dir: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{sweep_dir.parent.parent / 'mlflow.db'}")


def _runs(client: MlflowClient, experiment_name: str, phase: str = "tune"):
    """The sweep's parent runs, and its child runs of one phase: tune, or test."""
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("rlsweep.kind") == "sweep"]
    children = [
        r for r in runs if "mlflow.parentRunId" in r.data.tags and r.data.tags.get("rlsweep.phase") == phase
    ]
    return parents, children


def test_one_parent_run_with_one_child_per_trial(finished_sweep):
    parents, children = _runs(_client(finished_sweep), "cartpole_ppo")
    assert len(parents) == 1
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}


def test_each_test_trial_has_a_child_run_with_its_test_result(finished_sweep):
    _, tuned = _runs(_client(finished_sweep), "cartpole_ppo")
    _, tested = _runs(_client(finished_sweep), "cartpole_ppo", phase="test")
    assert len(tested) == 2
    assert {r.data.tags["rlsweep.tuned_trial_id"] for r in tested} <= {
        r.data.tags["rlsweep.trial_id"] for r in tuned
    }
    for run in tested:
        assert (
            run.data.metrics["test_ci_low"]
            <= run.data.metrics["test_mean"]
            <= run.data.metrics["test_ci_high"]
        )
        assert "test.seed_values" in run.data.params


def test_parent_run_holds_the_test_result_and_describes_the_sweep(finished_sweep):
    client = _client(finished_sweep)
    (parent,), tuned = _runs(client, "cartpole_ppo")
    assert {"best_test_mean", "best_test_ci_low", "best_test_ci_high"} <= set(parent.data.metrics)
    assert parent.data.params["test.best_trial_id"] in {r.data.tags["rlsweep.trial_id"] for r in tuned}
    note = parent.data.tags["mlflow.note.content"]
    assert "### Best config" in note and "### Held-out test (2 seeds" in note and "### Trials" in note
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"evaluation_curves.png", "tuning_vs_test.png"} <= artifacts


def test_the_experiment_is_tagged_as_model_training(finished_sweep):
    experiment = _client(finished_sweep).get_experiment_by_name("cartpole_ppo")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_sweeps_saved_view_lists_its_tuning_trials_by_score_with_the_columns_that_matter(finished_sweep):
    client = _client(finished_sweep)
    experiment = client.get_experiment_by_name("cartpole_ppo")
    (parent,), _ = _runs(client, "cartpole_ppo")
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{parent.info.run_id}"])
    state = json.loads(view["state"])
    assert view["name"] == f"cartpole_ppo sweep {finished_sweep.name} (rlsweep)"
    assert parent.info.run_id in state["searchFilter"] and "'tune'" in state["searchFilter"]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`score`", False)
    assert state["selectedColumns"][:4] == [
        "metrics.`score`",
        "metrics.`test_mean`",
        "metrics.`evaluation/episode_return_mean`",
        "metrics.`timesteps_total`",
    ]
    assert {"params.`lr`", "params.`gamma`", "params.`hidden_sizes`"} <= set(state["selectedColumns"])
    assert "params.`seed`" not in state["selectedColumns"]  # fixed, not searched


def test_child_params_are_the_trial_hyperparameters(finished_sweep):
    _, children = _runs(_client(finished_sweep), "cartpole_ppo")
    params = children[0].data.params
    assert {"lr", "gamma", "minibatch_size", "hidden_sizes", "env"} <= set(params)
    assert not any(key.startswith("__") or key == "one_minus_gamma" for key in params)


def test_child_metric_history_is_stepped_by_env_steps(finished_sweep):
    client = _client(finished_sweep)
    _, children = _runs(client, "cartpole_ppo")
    run = max(children, key=lambda c: c.data.metrics["training_iteration"])
    history = client.get_metric_history(run.info.run_id, "episode_return_mean")
    steps = [m.step for m in history]
    totals = [m.value for m in client.get_metric_history(run.info.run_id, "timesteps_total")]
    assert len(history) > 1
    assert steps == sorted(steps) and steps == [int(t) for t in totals]


def test_child_runs_end_finished_and_say_whether_the_scheduler_stopped_them(finished_sweep):
    _, children = _runs(_client(finished_sweep), "cartpole_ppo")
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["rlsweep.stopped_early"] for c in children} <= {"true", "false"}
    assert len(children) == sum("rlsweep.stopped_early" in c.data.tags for c in children)


def test_parent_run_holds_the_outcome_and_the_sweep_artifacts(finished_sweep):
    client = _client(finished_sweep)
    (parent,), _ = _runs(client, "cartpole_ppo")
    assert parent.info.status == "FINISHED"
    assert "best_score" in parent.data.metrics
    assert parent.data.params["sampler"] == "tpe"
    assert "best.lr" in parent.data.params
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_config.yaml", "trials.csv", "experiment.yaml", "optimization_history.png"} <= artifacts


def test_best_trial_run_has_its_checkpoint(finished_sweep):
    client = _client(finished_sweep)
    (parent,), _ = _runs(client, "cartpole_ppo")
    best_run_id = parent.data.tags["rlsweep.best_run_id"]
    files = {a.path for a in client.list_artifacts(best_run_id, "checkpoint")}
    assert "checkpoint/rlsweep_state.pt" in files


def test_tensorboard_events_hold_scalars_against_env_steps_and_hparams(finished_sweep):
    trial_dir = next(finished_sweep.glob("PPO_*"))
    events = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0}).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"episode_return_mean", "evaluation/episode_return_mean", "policy_loss", "approx_kl"} <= tags
    assert {"clip_fraction", "entropy", "env_steps_per_s", "sample_time_s", "learn_time_s"} <= tags
    steps = [e.step for e in events.Scalars("episode_return_mean")]
    totals = [int(e.value) for e in events.Scalars("timesteps_total")]
    assert steps == totals
    assert "hparams" in events.PluginTagToContent("hparams") or events.PluginTagToContent("hparams")


def test_a_single_training_run_is_tracked_without_a_parent(tmp_path, ray_session):
    assert main(["train", "--timesteps", "1000", "--results-dir", str(tmp_path)]) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.info.status == "FINISHED"
    assert client.list_artifacts(run.info.run_id, "checkpoint")


def test_pbt_sweep_with_mlflow_completes_and_records_mutations(tmp_path, ray_session):
    experiment = tmp_path / "pbt.yaml"
    experiment.write_text(
        "name: pbt_cartpole\n"
        "config: {evaluation_interval: 1, evaluation_num_episodes: 2}\n"
        "search_params: {rollout_length: {choices: [16]}, num_envs_per_worker: {choices: [4]}}\n"
        "num_samples: 2\n"
        "scheduler: {type: pbt, perturbation_interval: 2,\n"
        "            hyperparam_mutations: {lr: {low: 1.0e-4, high: 1.0e-2}}}\n"
        "stop: {training_iteration: 6}\n"
    )
    assert main(["sweep", str(experiment), "--results-dir", str(tmp_path)]) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _, children = _runs(client, "pbt_cartpole")
    assert len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}
    assert all("lr" in c.data.params for c in children)
    assert client.get_metric_history(children[0].info.run_id, "config/lr")


def test_unreachable_mlflow_store_warns_once_and_the_sweep_goes_on(tmp_path, ray_session, capsys):
    args = ["sweep", "cartpole_ppo", *TINY_SWEEP, "--num-samples", "2", "--results-dir", str(tmp_path)]
    assert main([*args, "--mlflow-uri", "http://127.0.0.1:9"]) == 0
    captured = capsys.readouterr()
    assert (captured.err + captured.out).count("MLflow tracking at http://127.0.0.1:9 failed") == 1
    assert list((tmp_path / "cartpole_ppo").glob("*/PPO_*/events.out.tfevents.*"))


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "server-artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    # No job runner (it runs GenAI scorers): fewer processes to start on a loaded machine.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Its own process group: stopping it stops its uvicorn workers too.
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                os.killpg(server.pid, signal.SIGKILL)
                pytest.fail("mlflow server did not come up")
            time.sleep(0.5)
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def test_sweep_logs_to_a_tracking_server_over_http(mlflow_server, tmp_path, ray_session):
    args = ["sweep", "cartpole_ppo", *TINY_SWEEP, "--num-samples", "2", "--results-dir", str(tmp_path)]
    assert main([*args, "--mlflow-uri", mlflow_server]) == 0
    parents, children = _runs(MlflowClient(mlflow_server), "cartpole_ppo")
    assert len(parents) == 1 and len(children) == 2
    artifacts = {a.path for a in MlflowClient(mlflow_server).list_artifacts(parents[0].info.run_id)}
    assert "best_config.yaml" in artifacts
