"""``mechanism demo --quick`` end to end: data, the one-category study, analyses, figures, the
category's complete REPORT.md and the study's; a second call resumes (trains nothing)."""
import json

import pytest
from click.testing import CliRunner

from cli.main import app

SECTIONS = ["## 1. Research question", "### 1.1 Observed effect", "### 1.3 The Tail-Aware Loss",
            "## 2. Hypotheses", "H1 — image boundaries", "H3 — gradient concentration",
            "H7 — latent calibration", "H4 — top-k ratio dilution", "## 3. Summary",
            "### 3.1 Verdicts", "### 3.2 Optimal hyper-parameters", "### 3.3 Random-k control",
            "## 4. Conclusion"]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    args = ["demo", "--quick", "--quiet", "--data", str(root / "data"), "--runs", str(root / "runs"),
            "--out", str(root / "report"), "--cache-dir", str(root / "cache"), "--device", "cpu"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    return root, first.output, second.output


def test_quick_demo_writes_a_complete_report(quick_demo):
    root, output, _ = quick_demo
    study = (root / "report" / "REPORT.md").read_text()
    assert "](categories/grass/REPORT.md)" in study and "| **macro mean** (1 category) |" in study
    report = root / "report" / "categories" / "grass"
    text = (report / "REPORT.md").read_text()
    for section in SECTIONS:
        assert section in text, section
    for name in ("H1", "H3", "H4", "H7", "observed_effect"):
        for ext in ("json", "csv", "md"):
            assert (report / "tables" / f"{name}.{ext}").is_file()
    pngs = sorted(p.name.split("_")[0] for p in (report / "figures").glob("*.png"))
    assert pngs == [f"fig{i}" for i in range(1, 9)]
    for png in (report / "figures").glob("*.png"):
        assert f"({png.relative_to(report).as_posix()})" in text      # linked from REPORT.md
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["checkpoints"]["analysed"]["sha256"] and manifest["checkpoints"]["baseline"]["sha256"]
    assert "report:" in output and "demo finished" in output


def test_quick_demo_resumes_without_training(quick_demo):
    _, first, second = quick_demo
    # 4 conditions × 2 seeds; the r sweep's 2% runs are the λ sweep's, linked and evaluated
    assert first.count(": trained") == 8 and first.count(": evaluated") == 2
    assert ": trained" not in second and "study: every run is trained already" in second
    assert "report grass: up to date" in second


def test_figures_rerender_from_the_report_folder(quick_demo, tmp_path):
    root, _, _ = quick_demo
    result = CliRunner().invoke(app, ["figures", "--results", str(root / "report"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "grass").glob("fig*.png"))) == 8     # a study folder: per category


def test_demo_rejects_an_unknown_category():
    result = CliRunner().invoke(app, ["demo", "--quick", "--category", "wood"])
    assert result.exit_code == 2 and "unknown demo category 'wood'" in result.output


def test_demo_rejects_bad_epochs_before_writing_anything(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--quick", "--epochs", "0", "--data", str(tmp_path / "d")])
    assert result.exit_code == 2 and "'--epochs': 0 is not in the range 1<=x<=100000" in result.output
    assert not (tmp_path / "d").exists()


def test_demo_precision_reaches_the_runs(quick_demo):
    """The runs train at the default bf16; ``--precision fp32`` is another setup, refused on
    the same runs folder before anything trains."""
    from mechanism.train.checkpoint import load_checkpoint
    root, _, _ = quick_demo
    ckpts = sorted((root / "runs").rglob("model.pt"))
    assert ckpts and {load_checkpoint(c).train.precision for c in ckpts} == {"bf16"}
    result = CliRunner().invoke(app, ["demo", "--quick", "--quiet", "--precision", "fp32",
                                      "--data", str(root / "data"), "--runs", str(root / "runs"),
                                      "--out", str(root / "report-fp32"), "--cache-dir", str(root / "cache")])
    assert result.exit_code != 0 and "differ in backbone, flow, training settings" in result.output
    assert ": trained" not in result.output


@pytest.mark.parametrize("cpus, workers", [(1, 1), (2, 1), (3, 1), (4, 2), (16, 2)])
def test_demo_cpu_default_is_one_worker_per_two_usable_cpus_at_most_two(monkeypatch, cpus, workers):
    """On a CPU the default is one worker per 2 usable CPUs (the affinity mask's), 1 to 2."""
    import mechanism.pipelines.demo as demo_pipeline
    monkeypatch.delenv("MECHANISM_THREADS", raising=False)
    monkeypatch.setattr(demo_pipeline, "usable_cpus", lambda: list(range(cpus)))
    assert demo_pipeline.default_workers("cpu") == workers


@pytest.mark.parametrize("group, args, gpus, workers", [
    ([], [], 0, 2),                                  # 16 usable CPUs, no thread count set
    ([], ["--quick"], 0, 1),
    ([], ["--workers", "3"], 0, 3),
    (["--threads", "4"], [], 0, 1),                  # a fixed thread count: one training
    (["--threads", "auto"], [], 0, 2),
    ([], ["--device", "cuda"], 3, 2),
    ([], ["--device", "cuda"], 1, 1),
    ([], ["--device", "cuda:1"], 3, 1),
])
def test_demo_passes_its_worker_count_to_the_study(monkeypatch, tmp_path, group, args, gpus, workers):
    """The count the demo hands ``run_demo`` (captured there): defaults by device and thread
    count; an explicit ``--workers`` and ``--quick`` win."""
    import torch

    import mechanism.pipelines.demo as demo_pipeline
    monkeypatch.setenv("MECHANISM_THREADS", "1")     # recorded, so --threads' setting is undone
    monkeypatch.delenv("MECHANISM_THREADS")
    monkeypatch.setattr(demo_pipeline, "usable_cpus", lambda: list(range(16)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    seen = []

    def fake_run_demo(*_, launch, **__):
        seen.append(launch.workers)
        raise SystemExit(0)
    monkeypatch.setattr(demo_pipeline, "run_demo", fake_run_demo)
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, [*group, "demo", *args, "--data", str(tmp_path / "d")])
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    assert seen == [workers]


def test_demo_rejects_an_unavailable_device_before_writing_anything(tmp_path, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(app, ["demo", "--device", "cuda", "--workers", "1",
                                      "--data", str(tmp_path / "d"), "--runs", str(tmp_path / "r"),
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.strip() == "error: --device cuda: CUDA is not available on this machine"
    assert not any(tmp_path.iterdir())
