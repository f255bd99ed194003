"""The rlsweep CLI: real sweeps through Ray Tune, and one clear line for every bad input."""

import io
import re
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from rlsweep.cli import main


def test_sweep_records_every_trial_in_the_optuna_study(finished_sweep):
    study = optuna.load_study(study_name="cartpole_ppo", storage=f"sqlite:///{finished_sweep / 'optuna.db'}")
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_sweep_writes_a_best_config(finished_sweep):
    best = yaml.safe_load((finished_sweep / "best_config.yaml").read_text())
    assert best["algorithm"] == "PPO"
    assert best["env"] == "CartPole-v1"
    assert "lr" in best["config"]


def test_best_config_says_how_it_did_on_the_held_out_seeds(finished_sweep):
    header = [
        line for line in (finished_sweep / "best_config.yaml").read_text().splitlines() if line[:1] == "#"
    ]
    assert "chosen on 2 held-out test seeds" in header[1]
    assert re.search(r"test mean [\d.]+ \(95% CI [\d.]+ to [\d.]+\); per seed: [\d.]+, [\d.]+", header[2])


def test_trials_table_holds_the_test_result_of_each_tested_config(finished_sweep):
    table = pd.read_csv(finished_sweep / "trials.csv")
    tested = table.dropna(subset=["test_mean"])
    assert len(tested) == 2
    assert (tested["test_ci_low"] <= tested["test_mean"]).all()
    assert (tested["test_seeds_reached_target"] <= 2).all()


def test_summary_lists_every_tested_config_and_marks_the_best(finished_sweep):
    from rlsweep.pipeline.runner import read_outcome
    from rlsweep.report.summary import print_summary
    from rlsweep.results.sweep_folder import SweepFolder

    out = io.StringIO()
    print_summary(read_outcome(SweepFolder(finished_sweep)), out)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Held-out test: top 2 configs on 2"))
    tested = lines[start + 1 : start + 3]
    assert sum(line.startswith(" * ") for line in tested) == 1
    assert all("tuning" in line and "test mean" in line for line in tested)
    assert any(line.startswith("Best on test: test mean") for line in lines)


def test_test_trials_train_on_seeds_no_tuning_trial_used(finished_sweep):
    from rlsweep.pipeline.runner import read_outcome
    from rlsweep.results.sweep_folder import SweepFolder
    from rlsweep.trainables.seeds import seed_values

    outcome = read_outcome(SweepFolder(finished_sweep))
    tuning = {s for t in outcome.trials for s in seed_values(t.config["seed"], t.config.get("num_seeds", 1))}
    testing = {
        s
        for c in outcome.test.configs
        for s in seed_values(c.tested.config["seed"], c.tested.config["num_seeds"])
    }
    assert len(testing) == 2 and not tuning & testing


def test_best_writes_a_config_that_train_accepts(finished_sweep, tmp_path, capsys):
    output = tmp_path / "best.yaml"
    assert main(["best", str(finished_sweep.parent), "--output", str(output)]) == 0
    assert "algorithm: PPO" in capsys.readouterr().out
    code = main(
        ["train", "--config-file", str(output), "--timesteps", "1000", "--results-dir", str(tmp_path)]
    )
    assert code == 0
    assert list((tmp_path / "train").glob("PPO_CartPole-v1_*/*/checkpoint_*/rlsweep_state.pt"))


def test_list_names_algorithms_spaces_and_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "PPO" in out and "ppo" in out and "cartpole_ppo" in out


def _experiment_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


BASE = "name: bad\nstop: {timesteps_total: 1000}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "num_sample: 3\n", "unknown experiment key 'num_sample' (did you mean 'num_samples'?)"),
        (BASE + "num_samples: many\n", "experiment key 'num_samples' must be an integer"),
        (BASE + "env: NoSuchEnv-v0\n", "unknown env 'NoSuchEnv-v0'"),
        (BASE + "env: no_such_module:Env-v0\n", "unknown env 'no_such_module:Env-v0'"),
        (BASE + "algorithm: TRPO\n", "unknown algorithm 'TRPO'"),
        (BASE + "search_space: ppp\n", "unknown search space 'ppp' (did you mean 'ppo'?)"),
        (BASE + "config: {lrr: 0.1}\n", "'config.lrr' is not a PPO config key (did you mean 'lr'?)"),
        (
            BASE + "search_params: {one_minus_gamma: {low: 1.5, high: 2}}\n",
            "invalid config: config key 'gamma'",
        ),
        (BASE + "search_params: {learning_rate: 0.1}\n", "names ['learning_rate'], which search space"),
        (BASE + "resources: {num_workers: 64}\n", "each trial needs 65 CPUs"),
        (BASE + "scheduler: {type: hyperband}\n", "'scheduler.type' must be one of"),
        (BASE + "scheduler: {type: asha, grace: 3}\n", "unknown experiment key 'scheduler.grace'"),
        ("name: bad\nstop: {}\n", "needs at least one of timesteps_total"),
        (BASE + "config: [1, 2\n", "is not valid YAML at line 4, column 1: expected ',' or ']'"),
        (BASE + "envs: {CartPole-v1: [0]}\n", "'envs.CartPole-v1' must be the env's score range [low, high]"),
        (BASE + "env: Acrobot-v1\nenvs: {CartPole-v1: [0, 500]}\n", "'env' and 'envs' exclude each other"),
        (
            BASE + "envs: {CartPole-v1: [0, 500], Acrobot-v1: [-500, -60]}\nresources: {num_workers: 1}\n",
            "set resources.num_workers: 0",
        ),
        (
            BASE + "score: {type: best}\n",
            "experiment key 'score.type' must be one of ['final', 'last_k', 'auc']",
        ),
        (BASE + "points_to_evaluate: [{gama: 0.99}]\n", "names 'gama', not a PPO config key (did you mean"),
        (BASE + "points_to_evaluate: [{hidden_sizes: [7]}]\n", "sets hidden_sizes=[7], which search space"),
        (BASE + "scheduler: {type: pb2, hyperparams: [clip_range]}\n", "PB2 can tune the float keys"),
        (BASE + "test: {top: 0}\n", "experiment key 'test.top' must be in [1, inf)"),
    ],
)
def test_bad_experiment_fails_with_one_clear_line(tmp_path, capsys, text, message):
    code = main(["sweep", _experiment_file(tmp_path, text), "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_experiment_name_lists_the_shipped_ones(capsys):
    assert main(["sweep", "no_such_experiment"]) == 2
    assert "shipped experiments: " in capsys.readouterr().err


def test_unwritable_results_dir_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--results-dir", str(blocker / "sub")]) == 2
    assert "cannot create results folder" in capsys.readouterr().err


def test_train_rejects_a_bad_config_before_starting_ray(capsys):
    assert main(["train", "--algo", "PPO", "--set", "gamma=2"]) == 2
    assert "config key 'gamma' must be in (0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["best", "test"])
def test_a_missing_sweep_folder_is_a_clear_error(tmp_path, capsys, command):
    assert main([command, str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_test_rejects_zero_seeds_with_one_clear_line(finished_sweep, capsys):
    assert main(["test", str(finished_sweep), "--seeds", "0"]) == 2
    assert "experiment key 'test.seeds' must be in [1, inf), got 0" in capsys.readouterr().err


def test_tensorboard_serves_the_newest_sweep_below_the_results_folder(tmp_path):
    from rlsweep.cli.result_commands import newest_run

    for experiment, stamp in [("a", "20260101-000000"), ("b", "20260102-000000"), ("a", "20260101-120000")]:
        sweep = tmp_path / experiment / stamp
        sweep.mkdir(parents=True)
        (sweep / "experiment.yaml").write_text("name: x\n")
    assert newest_run(tmp_path) == tmp_path / "b" / "20260102-000000"
    assert newest_run(tmp_path / "a") == tmp_path / "a" / "20260101-120000"


def test_ui_on_a_store_without_sweeps_links_to_mlflows_model_training_pages(tmp_path, capsys, monkeypatch):
    import rlsweep.cli.result_commands as cli

    (tmp_path / "mlflow.db").write_text("")
    monkeypatch.setattr(cli, "_serve", lambda command: 0)
    assert main(["ui", str(tmp_path), "--port", "5077"]) == 0
    assert "http://127.0.0.1:5077/#/experiments?workflowType=machine_learning" in capsys.readouterr().out


def test_ui_of_a_sweep_links_to_its_saved_view_of_trials(finished_sweep, capsys, monkeypatch):
    import rlsweep.cli.result_commands as cli

    monkeypatch.setattr(cli, "_serve", lambda command: 0)
    assert main(["ui", str(finished_sweep.parent)]) == 0
    parent_run_id = (finished_sweep / "mlflow_run.txt").read_text().strip()
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:5000/#/experiments/1/runs?viewStateShareKey={parent_run_id}&" in out


def test_ui_without_a_tracking_store_is_a_clear_error(tmp_path, capsys):
    assert main(["ui", str(tmp_path)]) == 2
    assert "no MLflow store at sqlite:///" in capsys.readouterr().err


def test_dashboard_of_a_folder_without_a_study_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "experiment.yaml").write_text("name: x\n")
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "holds no Optuna study" in capsys.readouterr().err


def test_train_runs_through_the_sweep_pipeline_with_its_progress_lines(tmp_path, capsys, ray_session):
    assert main(["train", "--timesteps", "2000", "--results-dir", str(tmp_path), "--no-mlflow"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\] trial \w+ started \(1/1\)", out)
    assert re.search(r"\] trial \w+ finished at [\d,]+ env steps", out)
    assert "Trained PPO on CartPole-v1 for" in out
    (run,) = (tmp_path / "train").iterdir()
    assert (run / "experiment.yaml").is_file() and (run / "trials.csv").is_file()
