"""Sweeps: the plan, exact shards, resume after killed runs, results.csv, merging, the CLI."""
import csv
import json
import shutil
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import TINY_BACKBONE, TINY_FLOW
from faults import fault

import mechanism.sweep.run as sweep_module
import mechanism.train.fit
from cli.main import app
from mechanism.errors import MechanismError
from mechanism.sweep.tables import HEADER, merge_results
from mechanism.sweep.plan import SweepSpec, parse_shard, plan, shard
from mechanism.sweep.results import COLUMNS, read_sweep_results, summarize_sweep
from mechanism.sweep.run import run_sweep
from mechanism.train.checkpoint import load_checkpoint
from mechanism.train.config import TrainConfig
from mechanism.train.loss import TailLossConfig

TRAIN = TrainConfig(epochs=1, batch_size=4)


def tiny_spec(data, **overrides) -> SweepSpec:
    """λ ∈ {0, 0.7} × seeds {0, 1} on tiny brick: 4 runs of one epoch."""
    return SweepSpec(**{"data_root": data, "categories": ("brick",), "param": "tail_weight",
                        "values": (0.0, 0.7), "seeds": (0, 1), "backbone": TINY_BACKBONE,
                        "flow": TINY_FLOW, "train": TRAIN, **overrides})


def test_plan_order_folder_names_and_exact_configs(tmp_path):
    spec = SweepSpec(tmp_path, ("grass", "brick"), "tail_top_k_ratio", (0.1, 0.02), seeds=(1, 0),
                     loss=TailLossConfig(0.5, 0.3, "random"), train=TRAIN)
    runs = plan(spec)
    assert [r.folder for r in runs] == [
        f"{c}/tail_top_k_ratio={v}-random/seed{s}"
        for c in ("brick", "grass") for v in ("0.02", "0.1") for s in (0, 1)]
    assert runs[0].loss == TailLossConfig(0.5, 0.02, "random") and runs[0].value == 0.02
    assert runs[1].train == replace(TRAIN, seed=1) and runs[1].seed == 1
    assert plan(replace(spec, categories=("brick", "grass"), values=(0.02, 0.1), seeds=(0, 1))) == runs
    lam = plan(SweepSpec(tmp_path, ("brick",), "tail_weight", (1, 0.3), train=TRAIN))
    assert [r.folder for r in lam] == ["brick/tail_weight=0.3-topk/seed0", "brick/tail_weight=1-topk/seed0"]
    assert lam[1].loss == TailLossConfig(1.0, 0.02, "topk")


@pytest.mark.parametrize("overrides,match", [
    ({"param": "lr"}, "unknown swept parameter 'lr'"),
    ({"values": ()}, "at least one value"),
    ({"values": (0.5, 0.5000001)}, "value 0.5 twice"),
    ({"values": (0.5, 1.2)}, "tail weight λ must lie in \\[0, 1\\], got 1.2"),
    ({"param": "tail_top_k_ratio", "values": (0.0,)}, "top-k ratio r must lie in \\(0, 1\\]"),
    ({"seeds": (0, 0)}, "seed 0 twice"),
    ({"seeds": (-1,)}, "integers in \\[0, 4294967295\\]"),
    ({"seeds": (2**32,)}, "integers in \\[0, 4294967295\\]"),
    ({"categories": ()}, "at least one category"),
    ({"image_score": "median"}, "unknown image score"),
])
def test_spec_refuses_bad_input(tmp_path, overrides, match):
    with pytest.raises(MechanismError, match=match):
        tiny_spec(tmp_path, **overrides)


@pytest.mark.parametrize("n_runs", [0, 1, 5, 12, 13])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 13])
def test_shards_partition_the_plan_exactly(n_runs, count):
    runs = list(range(n_runs))
    shards = [shard(runs, i, count) for i in range(1, count + 1)]
    assert sorted(r for s in shards for r in s) == runs          # union is the plan, no run twice
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards == [shard(runs, i, count) for i in range(1, count + 1)]   # deterministic


def test_shards_of_a_real_plan_and_shard_errors(tmp_path):
    runs = plan(tiny_spec(tmp_path, categories=("brick", "grass"), values=(0.0, 0.5, 1.0)))
    folders = [r.folder for i in range(1, 5) for r in shard(runs, i, 4)]
    assert sorted(folders) == sorted(r.folder for r in runs) and len(set(folders)) == len(runs) == 12
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)
    for text in ("2", "a/b", "1/2/3", "-1/4", "1.5/4"):
        with pytest.raises(MechanismError, match="shard must be i/n"):
            parse_shard(text)
    for text in ("0/4", "5/4", "1/0"):
        with pytest.raises(MechanismError, match="does not exist"):
            parse_shard(text)
    with pytest.raises(MechanismError, match="does not exist"):
        shard(runs, 0, 3)


def _files(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_resume_after_runs_killed_in_evaluation_and_in_training(tiny_data, tmp_path, monkeypatch):
    spec, out = tiny_spec(tiny_data), tmp_path / "sweep"
    folders = [out / r.folder for r in plan(spec)]
    seen = []

    def sweep():
        return run_sweep(spec, out, cache_dir=tmp_path / "cache", progress=False,
                         on_run=lambda o: seen.append((o.status, o.features_from_cache)))

    real_evaluate = sweep_module.evaluate_detector
    evaluations = []

    def evaluate_killed_at_second(*args, **kwargs):
        evaluations.append(args)
        if len(evaluations) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "evaluate_detector", evaluate_killed_at_second)
    with pytest.raises(KeyboardInterrupt):
        sweep()
    assert seen == [("trained", False)]                         # fresh cache: the backbone ran
    assert (folders[1] / "model.pt").is_file() and not (folders[1] / "metrics.json").exists()
    assert not (out / "results.csv").exists()
    finished = _files(folders[0])

    def fit_killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "evaluate_detector", real_evaluate)
    monkeypatch.setattr(mechanism.train.fit, "fit_flow", fit_killed)
    with pytest.raises(KeyboardInterrupt):
        sweep()
    assert seen[1:] == [("skipped", None), ("evaluated", None)]
    assert list(folders[2].iterdir()) == []                      # no half-written checkpoint
    (folders[2] / ".model.x1y2z3.tmp.pt").write_bytes(b"half a checkpoint")   # as after SIGKILL

    monkeypatch.undo()
    outcome = sweep()
    assert seen[3:] == [("skipped", None), ("skipped", None), ("trained", True), ("trained", True)]
    assert _files(folders[0]) == finished                        # the finished run was not touched
    assert sorted(p.name for p in folders[2].iterdir()) == ["metrics.json", "model.log.csv", "model.pt"]
    runs = read_sweep_results(out)
    assert [(r.tail_weight, r.seed) for r in runs] == [(0.0, 0), (0.0, 1), (0.7, 0), (0.7, 1)]
    assert all(0 <= r.pixel_ap <= 1 and r.train_seconds > 0 for r in runs)
    assert outcome.tables.n_runs == 4 and (out / "summary.md").read_text() == outcome.tables.summary
    summary = summarize_sweep(runs, "tail_weight", "brick")
    assert list(summary) == [0.0, 0.7] and summary[0.7]["pixel_ap"].n == 2
    assert (out / "manifest.json").is_file()


@pytest.fixture(scope="module")
def shared(tiny_data, tiny_cache, tmp_path_factory):
    """Shards 1/2 and 2/2 of ``tiny_spec`` written into one folder; the rows after shard 1."""
    out = tmp_path_factory.mktemp("shared") / "sweep"
    spec = tiny_spec(tiny_data)
    first = run_sweep(spec, out, shard=(1, 2), cache_dir=tiny_cache, progress=False)
    second = run_sweep(spec, out, shard=(2, 2), cache_dir=tiny_cache, progress=False)
    return out, first, second


def test_shards_writing_into_one_folder_merge(shared):
    out, first, second = shared
    assert [o.run.folder for o in first.runs] == ["brick/tail_weight=0-topk/seed0",
                                                  "brick/tail_weight=0.7-topk/seed0"]
    assert [o.status for o in first.runs + second.runs] == ["trained"] * 4
    assert first.tables.n_runs == 2 and second.tables.n_runs == 4
    with open(out / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header[:len(COLUMNS)]) == COLUMNS and tuple(header) == HEADER
    assert (out / "manifest-shard1of2.json").is_file() and (out / "manifest-shard2of2.json").is_file()
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("category,param,selection,value,n,image_auroc_mean") and len(summary) == 3


def _write_csv(folder, header, rows):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_merge_joins_shards_and_refuses_conflicts(shared, tmp_path):
    out = shared[0]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    a = _write_csv(tmp_path / "a", HEADER, rows[:3])
    b = _write_csv(tmp_path / "b", HEADER, rows[2:])                 # row 2 in both, identical
    tables = merge_results([a, b / "results.csv"], tmp_path / "merged")
    assert tables.n_runs == 4
    assert (tmp_path / "merged" / "results.csv").read_text() == (out / "results.csv").read_text()
    assert (tmp_path / "merged" / "summary.md").read_text() == (out / "summary.md").read_text()

    conflicting = _write_csv(tmp_path / "c", HEADER, [{**rows[2], "pixel_ap": "0.5"}])
    with pytest.raises(MechanismError, match="both hold the run .* with different pixel_ap"):
        merge_results([a, conflicting], tmp_path / "m1")
    other_header = _write_csv(tmp_path / "d", HEADER[:-1], rows[3:])
    with pytest.raises(MechanismError, match="has the columns"):
        merge_results([a, other_header], tmp_path / "m2")
    other_setup = _write_csv(tmp_path / "e", HEADER, [{**rows[3], "setup": "0" * 12}])
    with pytest.raises(MechanismError, match="differ in backbone, flow, training settings"):
        merge_results([a, other_setup], tmp_path / "m3")
    other_fixed = _write_csv(tmp_path / "f", HEADER, [{**rows[3], "top_k_ratio": "0.05"}])
    with pytest.raises(MechanismError, match="differ in the loss setting not swept"):
        merge_results([a, other_fixed], tmp_path / "m4")
    with pytest.raises(MechanismError, match="expected a sweep folder"):
        merge_results([a / "results.csv", shutil.copy(a / "results.csv", tmp_path / "x.csv")], tmp_path / "m5")
    assert not any((tmp_path / f"m{i}").exists() for i in range(1, 6))


@pytest.mark.parametrize("overrides,match", [
    ({"train": replace(TRAIN, epochs=2)}, "differ in backbone, flow, training settings"),
    ({"loss": TailLossConfig(top_k_ratio=0.05), "values": (0.3,)}, "differ in the loss setting not swept"),
])
def test_a_folder_of_another_setup_is_refused_before_training(shared, tiny_data, overrides, match):
    out = shared[0]
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(MechanismError, match=match):
        run_sweep(tiny_spec(tiny_data, **overrides), out, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_a_stale_checkpoint_is_retrained(shared, tiny_data, tiny_cache, tmp_path):
    spec = tiny_spec(tiny_data, values=(0.7,), seeds=(0,))
    folder = tmp_path / "sweep" / plan(spec)[0].folder
    folder.mkdir(parents=True)
    shutil.copy(shared[0] / "brick/tail_weight=0.7-topk/seed1/model.pt", folder / "model.pt")
    outcome = run_sweep(spec, tmp_path / "sweep", cache_dir=tiny_cache, progress=False)
    assert [o.status for o in outcome.runs] == ["retrained"]
    assert load_checkpoint(folder / "model.pt").train.seed == 0


def test_without_a_cache_the_backbone_still_runs_once(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHANISM_CACHE_DIR", str(tmp_path / "default-cache"))
    outcome = run_sweep(tiny_spec(tiny_data, seeds=(0,)), tmp_path / "sweep", cache_dir=None,
                        progress=False)
    assert [o.features_from_cache for o in outcome.runs] == [False, True]
    assert not (tmp_path / "default-cache").exists()


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_sweeps_shards_resumes_and_merges(tiny_data, tiny_cache, shared, tmp_path):
    def sweep(i):
        return _cli("sweep", "--data", tiny_data, "--category", "brick", "--param", "tail_top_k_ratio",
                    "--values", "0.2,0.1", "--seeds", "3", "--tail-weight", "1", "--selection", "random",
                    "--epochs", "1", "--input-size", "64", "--flow-blocks", "2", "--flow-hidden", "16",
                    "--cache-dir", tiny_cache, "--device", "cpu", "--quiet", "--shard", f"{i}/2",
                    "--out", tmp_path / f"shard{i}")

    for i, value in ((1, "0.1"), (2, "0.2")):
        result = sweep(i)
        assert result.exit_code == 0, (result.output, result.exception)
        assert result.output.startswith(f"trained   brick/tail_top_k_ratio={value}-random/seed3: Pixel AP")
        assert f"| {value} |" in result.output
        assert f"wrote {tmp_path / f'shard{i}' / 'results.csv'} (1 runs)" in result.output
    assert sweep(2).output.startswith("skipped   brick/tail_top_k_ratio=0.2-random/seed3")
    merged = _cli("sweep-merge", "--out", tmp_path / "merged", tmp_path / "shard1", tmp_path / "shard2")
    assert merged.exit_code == 0, (merged.output, merged.exception)
    runs = read_sweep_results(tmp_path / "merged")
    assert [(r.param, r.top_k_ratio, r.tail_weight, r.selection, r.seed) for r in runs] == \
        [("tail_top_k_ratio", 0.1, 1.0, "random", 3), ("tail_top_k_ratio", 0.2, 1.0, "random", 3)]
    refused = _cli("sweep-merge", "--out", tmp_path / "mixed", shared[0], tmp_path / "shard1")
    assert refused.exit_code == 2 and "differ in backbone, flow" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option,value,match", [
    ("--shard", "3/2", "shard 3/2 does not exist"),
    ("--shard", "x", "shard must be i/n"),
    ("--shard", "1/99999999999999999999", "1 ≤ i ≤ n ≤ 10000"),
    ("--values", "0,abc", "--values must be comma-separated floats"),
    ("--values", "0.5,1.5", "tail weight λ must lie in [0, 1], got 1.5"),
    ("--values", "0.5,0.5", "value 0.5 twice"),
    ("--seeds", "0,-1", "seeds must be integers in [0, 4294967295]"),
    ("--tail-weight", "0.3", "--tail-weight is what --param tail_weight sweeps"),
    ("--category", None, "holds 2 categories"),
])
@fault("O08", "sweep", "--shard, --values, --seeds malformed or out of range; the swept option "
       "also given; no --category for a folder of several", "error line; the output folder not created")
def test_cli_errors_are_one_line(tiny_data, tmp_path, option, value, match):
    opts = {"--category": "brick", "--param": "tail_weight", "--values": "0,1", "--out": tmp_path / "out",
            option: value}
    result = _cli("sweep", "--data", tiny_data, "--quiet",
                  *[x for k, v in opts.items() if v is not None for x in (k, v)])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_a_record_written_before_new_config_fields_still_resumes(tiny_data, tiny_cache, tmp_path):
    """A ``metrics.json`` without the fields added since (flow ``subnets``, training
    ``precision``) describes the values runs had then: the run is skipped, and
    its table row keeps the setup digest of the run written today."""
    spec = tiny_spec(tiny_data, values=(0.7,), seeds=(0,), train=replace(TRAIN, precision="fp32"),
                     flow=replace(TINY_FLOW, subnets="separate"))
    out = tmp_path / "sweep"
    run_sweep(spec, out, cache_dir=tiny_cache, progress=False)
    results = (out / "results.csv").read_text()
    record_path = out / plan(spec)[0].folder / "metrics.json"
    record = json.loads(record_path.read_text())
    del record["config"]["flow"]["subnets"], record["config"]["train"]["precision"]
    record_path.write_text(json.dumps(record))
    outcome = run_sweep(spec, out, cache_dir=tiny_cache, progress=False)
    assert [o.status for o in outcome.runs] == ["skipped"]
    assert (out / "results.csv").read_text() == results
    record["config"]["flow"] = "separate"
    record_path.write_text(json.dumps(record))
    with pytest.raises(MechanismError, match="metrics.json: a malformed run configuration \\(config.flow: expected an object"):
        run_sweep(spec, out, cache_dir=tiny_cache, progress=False)
