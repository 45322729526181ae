"""``mechanism study``: a tiny study (2 categories × 2 seeds, 1 epoch, small images) end to end
through the CLI; the macro mean against a hand computation; a run killed mid-training resumes to
identical results; submitit's local executor (the cluster path) gives the same tables."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import app
from mechanism.data.demo import generate_demo
from mechanism.eval.macro_effect import macro_contrast
from mechanism.eval.observed_effect import OBSERVED_METRICS, effect_draws, observed_effect
from test_observed_effect import _evaluation

CATEGORIES = ("brick", "grass")
SEEDS = "0,1"


def _args(data: Path, out: Path, runs: Path, cache: Path, *extra: str) -> list[str]:
    return ["study", "--data", str(data), "--categories", ",".join(CATEGORIES), "--seeds", SEEDS,
            "--epochs", "1", "--n-boot", "20", "--out", str(out), "--runs", str(runs),
            "--cache-dir", str(cache), "--device", "cpu", "--quiet", *extra]


def _tables(out: Path, runs: Path) -> dict[str, object]:
    """Every JSON table under ``out`` (manifests excluded: they hold times), by relative path,
    with the runs folder's path (H4 names its sweep) written as RUNS."""
    return {p.relative_to(out).as_posix(): json.loads(p.read_text().replace(str(runs), "RUNS"))
            for p in sorted(out.rglob("tables/*.json"))}


def _metrics(runs: Path) -> dict[str, dict]:
    """Each run's record — metrics, configuration — less its wall time and the checkpoint's hash
    (the checkpoint stores its training time)."""
    return {p.parent.relative_to(runs).as_posix():
            {k: v for k, v in json.loads(p.read_text()).items()
             if k not in ("train_seconds", "checkpoint_sha256")}
            for p in sorted(runs.rglob("metrics.json"))}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The plain run, once: data, cache and results shared by the tests below."""
    root = tmp_path_factory.mktemp("study")
    generate_demo(root / "data", categories=CATEGORIES, n_train=10, n_test_good=3, n_test_defect=5,
                  size=64)
    os.environ["MECHANISM_THREADS"] = "1"          # one thread for every path compared here
    result = CliRunner().invoke(app, _args(root / "data", root / "out", root / "runs", root / "cache"))
    assert result.exit_code == 0, result.output
    return root, result.output


def test_tiny_study_writes_every_category_and_the_macro_mean(tiny):
    root, output = tiny
    out = root / "out"
    text = (out / "REPORT.md").read_text()
    for category in CATEGORIES:
        assert (out / "categories" / category / "REPORT.md").is_file()
        assert f"](categories/{category}/REPORT.md)" in text
        assert f"| {category} |" in text
    assert text.count("| **macro mean** (2 categories) |") == 4     # headline, control, H4 × 2
    rows = json.loads((out / "tables" / "study.json").read_text())["contrasts"]
    assert [c["name"] for c in rows] == ["headline", "random_k_control", "H4.performance(10%)",
                                         "H4.performance(100%)"]
    assert all(e["n_seeds"] == 2 for c in rows for e in c["effects"])
    assert "study: 24/24 runs finished" in output
    assert text.count("Macro mean over 2 categories, candidate against baseline:") == 4
    assert "Check, not evidence: r = 100% makes the top-k term the plain mean" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["study"]["categories"] == list(CATEGORIES) and manifest["study"]["seeds"] == [0, 1]


def test_study_rows_are_the_category_reports_numbers(tiny):
    """A category's headline in the study table is its own report's observed effect, exactly."""
    root, _ = tiny
    rows = json.loads((root / "out" / "tables" / "study.json").read_text())["contrasts"]
    for effect in rows[0]["effects"]:
        own = json.loads((root / "out" / "categories" / effect["category"] / "tables" /
                          "observed_effect.json").read_text())
        assert effect == own


def test_second_call_trains_and_analyses_nothing(tiny):
    root, _ = tiny
    before = _tables(root / "out", root / "runs")
    again = CliRunner().invoke(app, _args(root / "data", root / "out", root / "runs", root / "cache"))
    assert again.exit_code == 0, again.output
    assert ": trained" not in again.output and again.output.count("up to date") == 2
    assert _tables(root / "out", root / "runs") == before


def test_resume_after_a_kill_gives_identical_results(tiny, tmp_path):
    """Kill the study (SIGKILL) once a few runs finished, run it again: every table and run
    metric equals the uninterrupted run's."""
    root, _ = tiny
    out, runs = tmp_path / "out", tmp_path / "runs"
    cmd = [sys.executable, "-m", "cli", *_args(root / "data", out, runs, root / "cache")]
    env = {**os.environ, "MECHANISM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).parents[1])
    deadline = time.time() + 300
    while len(list(runs.rglob("metrics.json"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the study ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "REPORT.md").exists()
    again = CliRunner().invoke(app, _args(root / "data", out, runs, root / "cache"))
    assert again.exit_code == 0, again.output
    assert _metrics(runs) == _metrics(root / "runs")
    assert _tables(out, runs) == _tables(root / "out", root / "runs")


def test_local_executor_gives_the_same_tables(tiny, tmp_path):
    pytest.importorskip("submitit")
    root, _ = tiny
    out, runs = tmp_path / "out", tmp_path / "runs"
    result = CliRunner().invoke(app, _args(root / "data", out, runs, root / "cache", "--workers", "2",
                                           "--cluster", "local"))
    assert result.exit_code == 0, result.output
    assert "2 workers (cpu, local cluster)" in result.output
    assert len(list((runs / ".submitit").rglob("*_result.pkl"))) == 2      # the jobs ran there
    assert _metrics(runs) == _metrics(root / "runs")
    assert _tables(out, runs) == _tables(root / "out", root / "runs")


def test_macro_mean_against_a_hand_computation():
    """Two categories: the macro estimate is the mean of the two categories' differences; each
    resample's macro value is the mean of the categories' resample values, and the interval is
    their 2.5/97.5 percentiles."""
    rng = np.random.default_rng(0)
    effects, draws = [], []
    for shift, category in ((0.3, "a"), (0.8, "b")):
        bases = [_evaluation(rng, category=category) for _ in range(2)]
        cands = [_evaluation(rng, maps_shift=shift, category=category) for _ in range(2)]
        effects.append(observed_effect(bases, cands, "b", "c", n_boot=50, seed=3))
        draws.append(effect_draws(bases, cands, 50, 3))
    macro = macro_contrast("headline", "b", "c", effects, draws, {})
    assert not np.array_equal(draws[0]["pixel_ap"], draws[1]["pixel_ap"])   # independent streams
    for key in OBSERVED_METRICS:
        d = macro.macro[key].difference
        by_hand = (effects[0].metrics[key].difference.estimate + effects[1].metrics[key].difference.estimate) / 2
        assert d.estimate == pytest.approx(by_hand)
        mean_draws = (draws[0][key][:, 2] + draws[1][key][:, 2]) / 2
        assert (d.low, d.high) == tuple(pytest.approx(v) for v in np.percentile(mean_draws, [2.5, 97.5]))
        # each category's draws are the ones its own interval came from
        own = effects[0].metrics[key].difference
        assert own.low == pytest.approx(np.percentile(draws[0][key][:, 2], 2.5))


def test_no_macro_mean_when_a_category_lacks_the_contrast():
    rng = np.random.default_rng(1)
    ev = [_evaluation(rng)]
    effect = observed_effect(ev, ev, "b", "c", n_boot=10)
    c = macro_contrast("headline", "b", "c", [effect], [effect_draws(ev, ev, 10)],
                       {"wood": "the sweep has no checkpoints of λ = 0"})
    assert c.macro is None and "wood: the sweep has no checkpoints" in c.note


def test_study_refuses_an_unknown_category_before_training(tiny, tmp_path):
    root, _ = tiny
    args = _args(root / "data", tmp_path / "o", tmp_path / "r", root / "cache")
    args[args.index("--categories") + 1] = "brick,wood"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "category 'wood' not found" in result.output
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("model.pt"))
