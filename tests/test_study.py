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
from mechanism.eval.observed_effect import effect_draws, observed_effect
from faults import fails, fault, siblings, snapshot
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
    before = os.environ.get("MECHANISM_THREADS")
    os.environ["MECHANISM_THREADS"] = "1"          # one thread for every path compared here
    try:
        result = CliRunner().invoke(app, _args(root / "data", root / "out", root / "runs", root / "cache"))
        assert result.exit_code == 0, result.output
        yield root, result.output
    finally:
        if before is None:
            os.environ.pop("MECHANISM_THREADS", None)
        else:
            os.environ["MECHANISM_THREADS"] = before


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
    assert text.count("Not resolved (S = 2 < 3 training seeds)") == 5      # S = 2 decides nothing:
    assert "## 6. Conclusion\n\nNot resolved (S = 2 < 3" in text             # 4 contrasts, conclusion
    assert "Identity check, not evidence: r = 100% makes the top-k term the plain mean" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["study"]["categories"] == list(CATEGORIES) and manifest["study"]["seeds"] == [0, 1]
    assert "Every claim rests on the checkpoints of S = 2 training seeds per category (every " \
        "seed of the study" in text
    assert text.count("| 2 × 8 per category |") == 4 and "print 24 distinct per-category" in text
    assert "Model: efficientnet_lite0 backbone" in text
    assert "Data, brick: 10 training images, 3 good + 5 defective test images of 64×64 px" in text
    for category in CATEGORIES:                        # every analysis over both seeds
        for name in ("H1", "H3", "H4", "H7"):
            table = json.loads((out / "categories" / category / "tables" / f"{name}.json").read_text())
            claims = table["evidence"]["claims"]
            assert claims and all(c["n_seeds"] == 2 for c in claims), (category, name)
        h1 = (out / "categories" / category / "tables" / "H1.md").read_text()
        assert "checkpoints of S = 2 training seeds (0, 1;" in h1


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
    assert "every run is trained already" in again.output and "workers" not in again.output
    assert _tables(root / "out", root / "runs") == before


def test_resume_after_a_kill_gives_identical_results(tiny, tmp_path):
    """Kill the study (SIGKILL) once a few runs finished, run it again — as two local worker
    processes — and every table and run metric equals the uninterrupted, single-process run's."""
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
    again = CliRunner().invoke(app, _args(root / "data", out, runs, root / "cache", "--workers", "2"))
    assert again.exit_code == 0, again.output
    assert "study: 2 workers (cpu)" in again.output
    assert _metrics(runs) == _metrics(root / "runs")
    assert _tables(out, runs) == _tables(root / "out", root / "runs")


def _workers(pid: int) -> list[int]:
    """Process ids of the multiprocessing workers whose parent is ``pid`` (from /proc; the
    resource tracker, which exits on its own, is not one)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")
def test_sigterm_stops_the_workers_and_releases_the_lock(tiny, tmp_path):
    """``kill`` during a 2-worker training ends the study as Ctrl-C does: no worker process
    outlives it (an orphan would go on writing the runs folder unlocked), the lock is gone, no
    report is written, and a rerun resumes."""
    root, _ = tiny
    out, runs = tmp_path / "out", tmp_path / "runs"
    cmd = [sys.executable, "-m", "cli", *_args(root / "data", out, runs, root / "cache", "--workers", "2")]
    proc = subprocess.Popen(cmd, env={**os.environ, "MECHANISM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[1])
    deadline = time.time() + 300
    while not list(runs.rglob("metrics.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    workers = _workers(proc.pid)
    assert proc.poll() is None and workers, "the study ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert not [pid for pid in workers if _alive(pid)]
    assert not list(tmp_path.glob(".*lock*")) and not (out / "REPORT.md").exists()
    again = CliRunner().invoke(app, _args(root / "data", out, runs, root / "cache"))
    assert again.exit_code == 0, again.output
    assert _tables(out, runs) == _tables(root / "out", root / "runs")


def test_local_executor_gives_the_same_tables(tiny, tmp_path):
    pytest.importorskip("submitit")
    root, _ = tiny
    out, runs = tmp_path / "out", tmp_path / "runs"
    result = CliRunner().invoke(app, _args(root / "data", out, runs, root / "cache", "--workers", "2",
                                           "--cluster", "local"))
    assert result.exit_code == 0, result.output
    assert "2 workers (cpu, local cluster)" in result.output
    # the jobs ran there: one feature job per category, then the two training shards
    assert len(list((runs / ".submitit").rglob("*_result.pkl"))) == 4
    assert "features: brick/train, 10 images" in result.output
    assert _metrics(runs) == _metrics(root / "runs")
    assert _tables(out, runs) == _tables(root / "out", root / "runs")


def _coarse(ev):
    """Few score levels, so the binned resample metrics are exact."""
    import dataclasses
    from mechanism.eval.metrics import detection_metrics
    ev.maps[:] = np.round(ev.maps * 2) / 2
    ev.scores[:] = ev.maps.reshape(len(ev.maps), -1).max(1)
    return dataclasses.replace(ev, metrics=detection_metrics(ev.scores, ev.labels, ev.maps, ev.masks))


def test_macro_mean_against_a_hand_computation():
    """Two categories × 2 seeds: the macro estimate is the mean of the categories' differences;
    resample b's macro value is the mean over categories of their resample-b differences,
    recomputed here by sklearn on the materialised images — the seed draw shared by the
    categories, each category's images drawn from its own stream — and the interval is the
    2.5/97.5 percentiles of those."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from mechanism.stats.bootstrap import resample_seed, two_stage_resamples
    rng = np.random.default_rng(0)
    effects, draws, pairs = [], [], []
    for shift, category in ((0.3, "a"), (0.8, "b")):
        bases = [_coarse(_evaluation(rng, category=category)) for _ in range(2)]
        cands = [_coarse(_evaluation(rng, maps_shift=shift, category=category)) for _ in range(2)]
        effects.append(observed_effect(bases, cands, "b", "c", n_boot=50, seed=3))
        draws.append(effect_draws(bases, cands, 50, 3))
        pairs.append((bases, cands))
    macro = macro_contrast("headline", "b", "c", effects, draws, {})

    def metric(ev, idx, key):
        if key == "pixel_ap":
            return average_precision_score(ev.masks[idx].ravel(), ev.maps[idx].ravel())
        return roc_auc_score(ev.labels[idx], ev.scores[idx])

    for key in ("pixel_ap", "image_auroc"):
        d = macro.macro[key].difference
        by_hand = np.mean([e.metrics[key].difference.estimate for e in effects])
        assert d.estimate == pytest.approx(by_hand)
        per_category = []
        for (bases, cands), category in zip(pairs, "ab"):
            resamples = two_stage_resamples([16, 16], 50, 3, shared_images=True,
                                            image_seed=resample_seed(3, category))
            per_category.append([np.mean([metric(cands[s], idx, key) - metric(bases[s], idx, key)
                                          for s, idx in r]) for r in resamples])
        lo, hi = np.percentile(np.mean(per_category, axis=0), [2.5, 97.5])
        assert (d.low, d.high) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9)), key


def test_categories_share_seed_draws_and_draw_images_apart():
    """The same evaluations under two category names: the seed draws agree, the image draws
    do not (so the two categories' resampled values differ)."""
    from mechanism.stats.bootstrap import resample_seed, two_stage_resamples
    a, b = (two_stage_resamples([16] * 3, 30, 3, shared_images=True, image_seed=resample_seed(3, c))
            for c in ("a", "b"))
    assert [[s for s, _ in r] for r in a] == [[s for s, _ in r] for r in b]
    assert any(not np.array_equal(x[0][1], y[0][1]) for x, y in zip(a, b))
    def pair(category):       # identical data under a category's name
        rng = np.random.default_rng(2)
        return ([_evaluation(rng, category=category) for _ in range(3)],
                [_evaluation(rng, maps_shift=0.5, category=category) for _ in range(3)])
    da, db = effect_draws(*pair("a"), 30, 3), effect_draws(*pair("b"), 30, 3)
    assert not np.array_equal(da["image_auroc"], db["image_auroc"])


def test_no_macro_mean_when_a_category_lacks_the_contrast():
    rng = np.random.default_rng(1)
    ev = [_evaluation(rng)]
    effect = observed_effect(ev, ev, "b", "c", n_boot=10)
    c = macro_contrast("headline", "b", "c", [effect], [effect_draws(ev, ev, 10)],
                       {"wood": "the sweep has no checkpoints of λ = 0"})
    assert c.macro is None and "wood: the sweep has no checkpoints" in c.note


@fault("W22", "study", "the study page fails after the category reports were rebuilt, into an "
       "earlier study's folder", "the exception propagates; the earlier study folder byte-identical "
       "(category reports included), no stage left; the finished trainings stay in --runs")
def test_a_failing_study_keeps_the_earlier_study_folder(tiny, tmp_path, monkeypatch):
    root, _ = tiny
    out, runs = tmp_path / "out", tmp_path / "runs"
    import shutil
    shutil.copytree(root / "out", out)
    shutil.copytree(root / "runs", runs)
    before = snapshot(out)
    import mechanism.pipelines.study as study

    def broken(*args, **kwargs):
        raise RuntimeError("study page broke")
    monkeypatch.setattr(study, "code_digest", lambda: "another code")   # every category rebuilt
    monkeypatch.setattr(study, "_write_study", broken)
    result = CliRunner().invoke(app, _args(root / "data", out, runs, root / "cache"))
    assert isinstance(result.exception, RuntimeError), result.output
    assert "report brick: analyses" in result.output          # a category report was rebuilt …
    assert snapshot(out) == before and siblings(out) == []     # … in the stage only


@pytest.mark.parametrize("runs", ["out/runs", "out", "parent"])
@fault("W25", "study", "--runs inside --out, equal to it, or holding it (the swap deleted every training)",
       "error line before anything is made")
def test_study_refuses_runs_and_out_that_overlap(tiny, tmp_path, monkeypatch, runs):
    root, _ = tiny
    monkeypatch.chdir(tmp_path)
    runs = f"../{tmp_path.name}" if runs == "parent" else runs
    fails(_args(root / "data", Path("out"), Path(runs), root / "cache"), "must be separate folders")
    assert list(tmp_path.iterdir()) == []


@fault("W21", "study", "--out holds something else than a study (e.g. a single report's figures/)",
       "error line naming what it holds; nothing trained")
def test_study_refuses_a_folder_that_is_not_a_study(tiny, tmp_path):
    root, _ = tiny
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "figures").mkdir()          # e.g. a single report's folder
    fails(_args(root / "data", tmp_path / "o", tmp_path / "r", root / "cache"),
          "is not a study folder (it holds figures)")
    assert not (tmp_path / "r").exists()


@fault("D14", "study", "--categories naming one the data folder lacks",
       "error line before any training; neither --runs nor --out created")
def test_study_refuses_an_unknown_category_before_training(tiny, tmp_path):
    root, _ = tiny
    args = _args(root / "data", tmp_path / "o", tmp_path / "r", root / "cache")
    args[args.index("--categories") + 1] = "brick,wood"
    fails(args, "category 'wood' not found")
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra, message", [
    (["--cluster-option", "a=1"], "cluster options need --cluster"),
    (["--cluster", "local", "--cluster-option", "nonsense"], "a cluster option is KEY=VALUE"),
    (["--seeds", "0,0"], "the study lists a seed twice"),
    (["--seeds", "a"], "--seeds must be comma-separated ints"),
    (["--seeds", ",".join(map(str, range(101)))], "at most 100 training seeds"),
    (["--layers", "9"], "has feature stages 0..4"),
    (["--layers", "3,2"], "must be distinct and increasing"),
    (["--input-size", "64x100"], "input size 64×100 is not a multiple of the stride 8"),
    (["--input-size", "64x"], "is neither a side nor height×width"),
])
@fault("O09", "study", "a cluster option without --cluster or not KEY=VALUE; a repeated or "
       "malformed seed; backbone stages or an input size the network cannot take",
       "error line; the runs folder not created")
def test_study_refuses_bad_options_with_one_line(tiny, tmp_path, extra, message):
    root, _ = tiny
    args = _args(root / "data", tmp_path / "o", tmp_path / "r", root / "cache")
    for i in range(0, len(extra), 2):
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_analyze_over_a_sweep_uses_every_seed_even_without_a_baseline(tiny, tmp_path):
    """``analyze --sweep`` on one seed's checkpoint of a study: H1 and H4 run on every seed the
    sweep holds for that condition (no baseline needed), and the manifest lists their
    checkpoints."""
    root, _ = tiny
    ckpt = root / "runs" / "brick" / "tail_top_k_ratio=0.02-topk" / "seed0" / "model.pt"
    out = tmp_path / "analysis"
    result = CliRunner().invoke(app, [
        "analyze", "--hypothesis", "h1", "--hypothesis", "h4", "--ckpt", str(ckpt),
        "--sweep", str(root / "runs"), "--bootstrap", "20", "--out", str(out),
        "--cache-dir", str(root / "cache"), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("H1", "H4"):
        table = json.loads((out / "tables" / f"{name}.json").read_text())
        assert table["context"]["training_seeds"] == [0, 1], name
        assert table["evidence"]["claims"][0]["n_seeds"] == 2, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert "analysed (seed 1)" in manifest["checkpoints"] and manifest["seeds"]["training"] == [0, 1]
