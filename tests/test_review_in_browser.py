"""What a person reviewing a sweep sees in MLflow's UI and in optuna-dashboard, checked in a
real headless Chromium (the system's chromium and chromium-driver packages; nothing is
downloaded)."""

import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port
from mlflow import MlflowClient

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium/chromedriver on PATH (apt-get install chromium chromium-driver; CI installs them)",
)
PAGE_TIMEOUT_S = 120
"""MLflow's UI is a 27 MB single-page app: a loaded 2-core machine takes tens of seconds."""
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")

ROWS_JS = """
const rows = {};
document.querySelectorAll('.ag-row[row-index]').forEach(row => {
  const index = Number(row.getAttribute('row-index'));
  rows[index] = (rows[index] || '') + ' ' + row.innerText;
});
return Object.keys(rows).sort((a, b) => a - b).map(index => rows[index]);
"""
"""The runs table's rows in display order, each as its text: the grid splits a row between
its pinned Run Name part and its scrolling columns, which share a row-index."""


def _serve(command: list[str], health_url: str):
    """Start a server in its own process group; its first stdout line once it answers."""
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    first_line = server.stdout.readline()
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(health_url, timeout=2)
            return server, first_line
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                _stop(server)
                pytest.fail(f"{command[:4]} did not come up: {first_line}")
            time.sleep(0.5)


def _stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1920,1080",
    ]:  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path: Selenium then never runs selenium-manager to fetch one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def rlsweep_ui(finished_sweep):
    """`rlsweep ui SWEEP` running; the URL it printed."""
    port = free_port()
    command = [sys.executable, "-m", "rlsweep", "ui", str(finished_sweep), "--port", str(port)]
    server, first_line = _serve(command, f"http://127.0.0.1:{port}/health")
    yield re.search(r"http://\S+", first_line)[0]
    _stop(server)


def _wait(browser, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, PAGE_TIMEOUT_S, poll_frequency=0.5).until(condition, message=what)


def _shows_number(text: str, value: float) -> bool:
    """`value` is among the numbers in `text`, as a page rounds it."""
    return any(math.isclose(float(x), value, rel_tol=1e-3, abs_tol=1e-2) for x in NUMBER.findall(text))


def _png_width(path: Path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def test_rlsweep_ui_lands_on_the_trials_with_their_scores_and_charts_note_and_plots_open(
    finished_sweep, rlsweep_ui, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    client = MlflowClient(f"sqlite:///{finished_sweep.parent.parent / 'mlflow.db'}")
    parent_run_id = (finished_sweep / "mlflow_run.txt").read_text().strip()
    parent = client.get_run(parent_run_id)
    experiment_id = parent.info.experiment_id
    trials = client.search_runs(
        [experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.`rlsweep.phase` = 'tune'",
    )
    names = [run.info.run_name for run in trials]

    # The landing page: the runs view of the model-training pages, one row per trial.
    browser.get(rlsweep_ui)
    rows = _wait(
        browser,
        lambda b: (r := b.execute_script(ROWS_JS)) and all(any(n in row for row in r) for n in names) and r,
        "a row for every trial",
    )
    browser.save_screenshot(str(tmp_path / "mlflow-ui.png"))
    assert f"/experiments/{experiment_id}/runs" in browser.current_url
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Token Usage" not in page and "Observability" not in page  # GenAI's overview
    assert len(rows) == len(trials)

    # Every trial's row shows its score; the best is on top.
    shown_scores = []
    for row in rows:
        (run,) = [run for run in trials if run.info.run_name in row]
        score = run.data.metrics["score"]
        assert _shows_number(row, score), (row, score)
        shown_scores.append(score)
    assert shown_scores == sorted(shown_scores, reverse=True)

    # The chart view draws the evaluation return against steps (env steps) with no set-up.
    browser.get(f"{rlsweep_ui}&compareRunsMode=CHART")
    _wait(
        browser,
        lambda b: (
            "evaluation/episode_return_mean" in (t := b.find_element(By.TAG_NAME, "body").text)
            and "Step" in t
        ),
        "a chart of evaluation/episode_return_mean against steps",
    )

    # The sweep's parent run: its Markdown description rendered as a heading.
    base = rlsweep_ui.split("#")[0]
    browser.get(f"{base}#/experiments/{experiment_id}/runs/{parent_run_id}?workflowType=machine_learning")
    _wait(
        browser,
        lambda b: b.find_elements(By.XPATH, "//h2[starts-with(normalize-space(.), 'Sweep cartpole_ppo')]"),
        "the sweep's description rendered from Markdown",
    )

    # A report plot opens as the image the sweep wrote.
    plot = "evaluation_curves.png"
    browser.get(f"{base}#/experiments/{experiment_id}/runs/{parent_run_id}/artifacts/{plot}")
    widths = _wait(
        browser,
        lambda b: b.execute_script(
            "return Array.from(document.images).filter(i => i.src.startsWith('blob:') && i.complete)"
            ".map(i => i.naturalWidth)"
        ),
        f"the {plot} artifact shown as an image",
    )
    assert _png_width(finished_sweep / plot) in widths


@pytest.fixture
def rlsweep_dashboard(finished_sweep):
    """`rlsweep dashboard SWEEP` running; the URL it printed."""
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard not installed (the dashboard extra)")
    port = free_port()
    command = [sys.executable, "-m", "rlsweep", "dashboard", str(finished_sweep), "--port", str(port)]
    server, first_line = _serve(command, f"http://127.0.0.1:{port}/api/studies")
    yield re.search(r"http://\S+", first_line)[0]
    _stop(server)


def test_rlsweep_dashboard_opens_the_sweeps_study_with_its_best_trial(
    finished_sweep, rlsweep_dashboard, browser, tmp_path
):
    import optuna
    from selenium.webdriver.common.by import By

    study = optuna.load_study(study_name=None, storage=f"sqlite:///{finished_sweep / 'optuna.db'}")
    expected = [study.study_name, "History", f"Best Trial (number={study.best_trial.number})"]
    browser.get(rlsweep_dashboard)
    text = _wait(
        browser,
        lambda b: (t := b.find_element(By.TAG_NAME, "body").text) and all(e in t for e in expected) and t,
        f"the study's page showing {expected}",
    )
    browser.save_screenshot(str(tmp_path / "optuna-dashboard.png"))
    assert _shows_number(text.split("Best Trial", 1)[1], study.best_value)
