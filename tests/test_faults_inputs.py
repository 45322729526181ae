"""The fault catalogue, input side: bad data, images, checkpoints, tables and options, each one
``error:`` line and exit code 2, with nothing written (registry in ``faults.py``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from faults import fails, fault, invoke, snapshot, succeeds
from test_images import _png_declaring


@pytest.fixture
def train_args(tiny_data, tiny_cache, tmp_path):
    def make(data=tiny_data, flags=(), **overrides):
        opts = {"--category": "brick", "--out": tmp_path / "run" / "model.pt", "--epochs": 1,
                "--input-size": 64, "--cache-dir": tiny_cache, **overrides}
        return ["train", "--data", data, "--quiet", *flags] + [x for kv in opts.items() for x in kv]
    return make


def nothing_written(tmp_path):
    return not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.fixture
def data_copy(tiny_data, tmp_path):
    """A writable copy of tiny brick."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "brick", data / "brick")
    return data / "brick"


def evaluate_args(ckpt, data, *extra):
    return ["evaluate", "--ckpt", ckpt, "--data", data, "--quiet", "--no-cache", *extra]


# --- data folders -------------------------------------------------------------------------------

@fault("D01", "train", "--data folder that does not exist", "error line; nothing written")
def test_missing_data_folder(train_args, tmp_path):
    fails(train_args(data=tmp_path / "absent"), "does not exist")
    assert nothing_written(tmp_path)


@fault("D02", "train", "--data is a folder of loose images, not the MVTec layout",
       "error line naming the expected layout")
def test_not_an_mvtec_folder(train_args, tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"x")
    fails(train_args(data=tmp_path / "flat"), "not an MVTec AD-style folder")


@fault("D03", "train", "--category that the data folder lacks", "error line listing the categories")
def test_unknown_category(train_args):
    fails(train_args(**{"--category": "carpet"}), "category 'carpet' not found")


@fault("D04", "evaluate", "a defective test image without its mask", "error line naming the mask")
def test_defect_image_without_mask(data_copy, tiny_ckpt):
    next((data_copy / "ground_truth" / "scratch").iterdir()).unlink()
    fails(evaluate_args(tiny_ckpt, data_copy.parent), "has no mask")


@fault("D05", "evaluate", "a mask of another size than its image (was resized and scored)",
       "error line with both sizes; --json not written")
def test_a_mask_of_another_size_than_its_image(data_copy, tiny_ckpt, tmp_path):
    mask_path = next((data_copy / "ground_truth" / "scratch").iterdir())
    cv2.imwrite(str(mask_path), cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)[::2, ::2])
    fails(evaluate_args(tiny_ckpt, data_copy.parent, "--json", tmp_path / "m.json"),
          f"{mask_path.name} is 32×32 pixels but its image")
    assert "is 64×64: a mask must have its image's size" in invoke(
        evaluate_args(tiny_ckpt, data_copy.parent)).stderr
    assert not (tmp_path / "m.json").exists()


@fault("D06", "train", "a training image that is not an image", "error line naming the file; nothing written")
def test_unreadable_image(data_copy, train_args, tmp_path):
    (data_copy / "train" / "good" / "000.png").write_bytes(b"not a png")
    fails(train_args(data=data_copy.parent, flags=["--no-cache"]), "cannot read image")
    assert nothing_written(tmp_path)


@fault("D07", "train", "a training image whose file name is not UTF-8",
       "error line showing the name's bytes; nothing written")
def test_a_file_name_that_is_not_utf8(data_copy, train_args, tmp_path):
    good = data_copy / "train" / "good"
    shutil.copy(good / "000.png", os.fsdecode(bytes(good) + b"/\xff\xfe.png"))
    fails(train_args(data=data_copy.parent, flags=["--no-cache"]), r"not UTF-8 (b'\xff\xfe.png')")
    assert nothing_written(tmp_path)


@fault("D08", "evaluate", "a test split without defective images", "error line: metrics need both classes")
def test_a_test_split_without_defects(data_copy, tiny_ckpt):
    for folder in (data_copy / "test").iterdir():
        if folder.name != "good":
            shutil.rmtree(folder)
    fails(evaluate_args(tiny_ckpt, data_copy.parent), "holds no defective images")


@fault("D09", "train", "an empty train/good folder", "error line naming the folder; nothing written")
def test_no_training_images(data_copy, train_args, tmp_path):
    for p in (data_copy / "train" / "good").iterdir():
        p.unlink()
    fails(train_args(data=data_copy.parent, flags=["--no-cache"]), "no images found")
    assert nothing_written(tmp_path)


# --- images -------------------------------------------------------------------------------------

def _test_image(data_copy):
    return next((data_copy / "test" / "good").iterdir())


@fault("D10", "evaluate", "a 74-byte PNG that declares 100000×100000 pixels",
       "error line naming the image; nothing decoded")
def test_image_declaring_a_huge_size(data_copy, tiny_ckpt):
    target = _test_image(data_copy)
    target.write_bytes(_png_declaring(100_000, 100_000))
    fails(evaluate_args(tiny_ckpt, data_copy.parent), target.name)


@fault("D11", "evaluate", "a test image with float32 pixels (TIFF)",
       "error line: only 8- and 16-bit images are read")
def test_float_image(data_copy, tiny_ckpt):
    target = _test_image(data_copy)
    tiff = target.with_suffix(".tiff")
    target.unlink()
    cv2.imwrite(str(tiff), np.full((64, 64), 0.5, np.float32))
    fails(evaluate_args(tiny_ckpt, data_copy.parent), "float32 pixels")


@fault("D12", "evaluate", "an empty (0-byte) test image", "error line naming the image")
def test_empty_image(data_copy, tiny_ckpt):
    target = _test_image(data_copy)
    target.write_bytes(b"")
    fails(evaluate_args(tiny_ckpt, data_copy.parent), f"cannot read image {target}")


@fault("D13", "evaluate", "a truncated PNG (the first 100 bytes of a real one)",
       "error line naming the image")
def test_truncated_image(data_copy, tiny_ckpt):
    target = _test_image(data_copy)
    target.write_bytes(target.read_bytes()[:100])
    fails(evaluate_args(tiny_ckpt, data_copy.parent), target.name)


# --- checkpoints --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,match", [("absent", "does not exist"), ("corrupt", "corrupt"),
                                        ("foreign", "not a tailflow-mechanism checkpoint")])
@fault("C01", "evaluate", "--ckpt missing / corrupt bytes / another program's torch file",
       "error line per kind")
def test_checkpoint_missing_corrupt_foreign(tmp_path, kind, match):
    path = tmp_path / f"{kind}.pt"
    if kind == "corrupt":
        path.write_bytes(b"\x00garbage")
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    fails(["evaluate", "--ckpt", path], match)


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


@fault("C02", "evaluate", "a checkpoint holding a pickled object (code on load)",
       "refused unopened (weights_only); error line")
def test_pickle_payload_is_refused(tmp_path):
    torch.save({"format": "tailflow-mechanism/checkpoint", "x": _Payload()}, tmp_path / "evil.pt")
    fails(["evaluate", "--ckpt", tmp_path / "evil.pt"], "refused unopened")


def _edited_checkpoint(tiny_ckpt, tmp_path, edit):
    payload = torch.load(tiny_ckpt, weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / "edited.pt")
    return tmp_path / "edited.pt"


@fault("C03", "evaluate", "a checkpoint whose flow weights miss a key", "error line naming the missing weight")
def test_state_dict_with_a_missing_key_names_it(tiny_ckpt, tmp_path):
    key = sorted(torch.load(tiny_ckpt, weights_only=True)["flow_state"])[0]
    bad = _edited_checkpoint(tiny_ckpt, tmp_path, lambda p: p["flow_state"].pop(key))
    fails(["evaluate", "--ckpt", bad, "--quiet"], f"missing weight {key!r}")


@pytest.mark.parametrize("edit,match", [
    (lambda p: p["flow"].update(n_blocks="2"), "flow.n_blocks: expected int, got '2'"),
    (lambda p: p["train"].update(momentum=0.9), "train: unknown field 'momentum'"),
    (lambda p: p["data"].pop("fingerprint"), "data: missing field 'fingerprint'"),
    (lambda p: p["loss"].update(top_k_ratio=0.0), "loss: top-k ratio r must lie in (0, 1]"),
    (lambda p: p.update(schema_version=99), "has checkpoint schema 99"),
    (lambda p: p.update(schema_version=True), "has checkpoint schema True"),
    (lambda p: p.update(extra={}), "unknown section 'extra'"),
    (lambda p: p["flow"].update(hidden=10**9), "flow: subnet hidden width must lie in [1, 4096]"),
    (lambda p: p["data"].update(n_train=-3), "n_train: expected ≥ 1"),
])
@fault("C04", "evaluate", "a checkpoint config with a mistyped, unknown, missing or out-of-range "
       "field (hidden width 10⁹ tried to allocate 224 GB); an unknown section; a future or boolean "
       "schema", "error line naming the file and the field")
def test_checkpoint_configs_are_read_strictly(tiny_ckpt, tmp_path, edit, match):
    bad = _edited_checkpoint(tiny_ckpt, tmp_path, edit)
    result = fails(["evaluate", "--ckpt", bad, "--quiet"], match)
    assert str(bad) in result.stderr


@fault("C05", "evaluate", "a checkpoint whose weights are NaN (saved by an older version)",
       "error line: the scores are not finite (never mapped to a number)")
def test_nan_weights(tiny_ckpt, tmp_path):
    bad = _edited_checkpoint(tiny_ckpt, tmp_path, lambda p: [t.fill_(float("nan"))
                                                             for t in p["flow_state"].values()
                                                             if t.is_floating_point()])
    fails(["evaluate", "--ckpt", bad, "--quiet", "--no-cache"], "not finite")


@fault("C06", "train", "--backbone-weights file that does not fit, or is absent",
       "error line naming the file")
def test_weights_file_that_does_not_fit(train_args, tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    fails(train_args(**{"--backbone-weights": wrong}), "does not fit")
    fails(train_args(**{"--backbone-weights": tmp_path / "absent.pth"}), "absent.pth")


@fault("C07", "train", "--backbone that timm does not know", "error line naming it")
def test_unknown_backbone(train_args):
    fails(train_args(**{"--backbone": "no_such_net"}), "no_such_net")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@fault("C08", "train, evaluate", "--device cuda on a machine without CUDA", "error line; nothing written")
def test_cuda_requested_without_cuda(train_args, tiny_ckpt, tmp_path):
    fails(train_args(**{"--device": "cuda"}), "CUDA is not available")
    fails(["evaluate", "--ckpt", tiny_ckpt, "--device", "cuda"], "CUDA is not available")
    assert nothing_written(tmp_path)


@fault("C09", "analyze", "--baseline-ckpt trained on another category's images",
       "error line before any analysis: paired analyses need the same training images")
def test_baseline_of_other_images(tiny_ckpt, tiny_data, tiny_cache, tmp_path):
    other = tmp_path / "grass.pt"
    succeeds(["train", "--data", tiny_data, "--category", "grass", "--out", other, "--epochs", "1",
              "--input-size", "64", "--layers", "3", "--local-avg", "0", "--flow-blocks", "2",
              "--flow-hidden", "32", "--quiet", "--cache-dir", tiny_cache])
    fails(["analyze", "--hypothesis", "H7", "--ckpt", tiny_ckpt, "--baseline-ckpt", other,
           "--out", tmp_path / "out", "--quiet", "--cache-dir", tiny_cache], "trained on other images")
    assert not (tmp_path / "out").exists()


# --- tables and records the tool reads back ------------------------------------------------------

@pytest.fixture(scope="module")
def analysed_tables(tiny_ckpt, tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("tables") / "results"
    succeeds(["analyze", "--hypothesis", "H7", "--ckpt", tiny_ckpt, "--out", out, "--quiet",
              "--bootstrap", "20", "--cache-dir", tiny_cache])
    return out


@pytest.mark.parametrize("edit,match", [
    (lambda text: text[:len(text) // 2], "is not valid JSON"),
    (lambda text: json.dumps({**json.loads(text), "n_images": "many"}), "unknown field 'n_images'"),
    (lambda text: json.dumps({**json.loads(text), "config": "H7"}), "H7.config: expected an object"),
])
@fault("T01", "figures", "a result table (tables/H7.json) cut in half, with an unknown field, or a "
       "mistyped one", "error line naming the file and the field; the earlier figures byte-identical")
def test_figures_from_a_damaged_table(analysed_tables, tmp_path, edit, match):
    results = tmp_path / "results"
    shutil.copytree(analysed_tables, results)
    succeeds(["figures", "--results", results])
    before = snapshot(results)
    table = results / "tables" / "H7.json"
    table.write_text(edit(table.read_text()))
    result = fails(["figures", "--results", results], match)
    assert "H7.json" in result.stderr
    assert {k: v for k, v in snapshot(results).items() if k != "tables/H7.json"} == \
           {k: v for k, v in before.items() if k != "tables/H7.json"}


@fault("T06", "figures", "a result table whose arrays disagree in length (H7.json's empirical "
       "percentiles doubled; was a matplotlib traceback after fig4 was rewritten)",
       "error line naming the file and the field, before any figure is drawn; every figure byte-identical")
def test_figures_from_a_table_with_arrays_of_other_lengths(analysed_tables, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(analysed_tables, results)
    succeeds(["figures", "--results", results])
    table = results / "tables" / "H7.json"
    data = json.loads(table.read_text())
    data["candidate"]["empirical_percentiles"] *= 2
    table.write_text(json.dumps(data))
    before = snapshot(results)
    result = fails(["figures", "--results", results], "empirical_percentiles: expected 99 values, got 198")
    assert "H7.json" in result.stderr and snapshot(results) == before


@pytest.fixture(scope="module")
def one_run_sweep(tiny_data, tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("record") / "sweep"
    succeeds(["sweep", "--data", tiny_data, "--category", "brick", "--param", "tail_weight",
              "--values", "0.7", "--out", out, "--epochs", "1", "--input-size", "64", "--layers", "3",
              "--local-avg", "0", "--flow-blocks", "2", "--flow-hidden", "32", "--quiet",
              "--cache-dir", tiny_cache])
    return out


@fault("O11", "sweep", "an input size the backbone's stride does not divide (the sweep made "
       "its run folders before the check)", "error line naming the stride; nothing written")
def test_sweep_checks_the_input_size_before_any_folder(tiny_data, tiny_cache, tmp_path):
    fails(["sweep", "--data", tiny_data, "--category", "brick", "--param", "tail_weight",
           "--values", "0.7", "--out", tmp_path / "sweep", "--epochs", "1", "--input-size", "60",
           "--layers", "3", "--quiet", "--cache-dir", tiny_cache], "not a multiple of the stride")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("edit,match", [
    (lambda r: r.update(pixel_ap="high"), "record.pixel_ap: expected a number, got 'high'"),
    (lambda r: r.pop("k"), "record: missing field 'k'"),
    (lambda r: r["config"]["train"].update(lr=-1.0), "learning rate must be a finite number > 0"),
    (lambda r: r.update(pixel_ap=7.5), "metrics.json: pixel_ap 7.5 lies outside [0, 1]"),
    (lambda r: r.update(k=10**6), "record.k: expected 1 ≤ k ≤ n_patches"),
])
@fault("T02", "sweep", "a finished run's metrics.json with a mistyped metric, a missing field or an "
       "impossible setting, on resume", "error line naming the record and the field; results.csv byte-identical")
def test_sweep_resume_reads_run_records_strictly(one_run_sweep, tiny_data, tiny_cache, tmp_path, edit, match):
    sweep = tmp_path / "sweep"
    shutil.copytree(one_run_sweep, sweep)
    record_path = next(sweep.rglob("metrics.json"))
    record = json.loads(record_path.read_text())
    edit(record)
    record_path.write_text(json.dumps(record))
    before = (sweep / "results.csv").read_bytes()
    result = fails(["sweep", "--data", tiny_data, "--category", "brick", "--param", "tail_weight",
                    "--values", "0.7", "--out", sweep, "--epochs", "1", "--input-size", "64",
                    "--layers", "3", "--local-avg", "0", "--flow-blocks", "2", "--flow-hidden", "32",
                    "--quiet", "--cache-dir", tiny_cache], match)
    assert "metrics.json" in result.stderr and (sweep / "results.csv").read_bytes() == before


@fault("T04", "figures", "a report's observed_effect.json with its fields missing",
       "error line naming the file and the missing field")
def test_figures_from_a_damaged_effect(analysed_tables, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(analysed_tables, results)
    (results / "tables" / "observed_effect.json").write_text(json.dumps({"n_seeds": 3}))
    result = fails(["figures", "--results", results], "observed_effect.json is not an observed effect")
    assert "missing field" in result.stderr


@fault("T05", "evaluate", "a torn commit journal (.model.pt.commit) left by a kill during its write",
       "ignored and removed (nothing had moved); the checkpoint loads as it was, exit 0")
def test_a_torn_journal_is_dropped(tiny_ckpt, tmp_path):
    ckpt = tmp_path / "model.pt"
    shutil.copy(tiny_ckpt, ckpt)
    (tmp_path / ".model.pt.commit").write_text('[[".model.pt.st')
    before = ckpt.read_bytes()
    succeeds(["evaluate", "--ckpt", ckpt, "--quiet"])
    assert ckpt.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@fault("T08", "figures", "intervals that do not contain their estimates (an analysis with "
       "--bootstrap 2; was a matplotlib traceback)", "those figures skipped with the reason, the "
       "others drawn; exit 0")
def test_figures_of_intervals_that_exclude_their_estimate(tiny_ckpt, tiny_cache, tmp_path):
    out = tmp_path / "results"
    succeeds(["analyze", "--hypothesis", "H3", "--ckpt", tiny_ckpt, "--out", out, "--quiet",
              "--bootstrap", "2", "--cache-dir", tiny_cache])
    data = json.loads((out / "tables" / "H3.json").read_text())
    ratio = data["conditions"][0]["ratio"]
    ratio["low"], ratio["high"] = ratio["estimate"] + 1, ratio["estimate"] + 2   # excludes it
    (out / "tables" / "H3.json").write_text(json.dumps(data))
    result = succeeds(["figures", "--results", out])
    assert "skipped fig1: the interval" in result.output and "does not contain its estimate" in result.output
    assert (out / "figures" / "fig3_image_gradient.png").is_file() is ("skipped fig3" not in result.output)


@fault("T07", "sweep-merge", "a results.csv saved with a UTF-8 byte-order mark (a spreadsheet's "
       "export; was reported as a missing column)", "read as written: the merge equals the one of "
       "the file without the mark, exit 0")
def test_a_results_table_with_a_byte_order_mark(one_run_sweep, tmp_path):
    succeeds(["sweep-merge", "--out", tmp_path / "plain", one_run_sweep])
    shard = tmp_path / "shard"
    shard.mkdir()
    (shard / "results.csv").write_bytes(b"\xef\xbb\xbf" + (one_run_sweep / "results.csv").read_bytes())
    succeeds(["sweep-merge", "--out", tmp_path / "bom", shard])
    assert snapshot(tmp_path / "bom") == snapshot(tmp_path / "plain")


# --- options ------------------------------------------------------------------------------------

@pytest.mark.parametrize("option,value,match", [
    ("--tail-weight", "1.2", "'--tail-weight': 1.2 is not in the range 0<=x<=1"),
    ("--tail-weight", "-0.1", "'--tail-weight'"),
    ("--tail-weight", "nan", "nan is not a finite number"),
    ("--top-k-ratio", "0", "'--top-k-ratio': 0.0 is not in the range 0<x<=1"),
    ("--top-k-ratio", "1.5", "'--top-k-ratio'"),
    ("--lr", "inf", "inf is not a finite number"),
    ("--epochs", "0", "'--epochs': 0 is not in the range 1<=x<=100000"),
    ("--epochs", "99999999999999999999", "is not in the range 1<=x<=100000"),
    ("--seed", "4294967296", "'--seed': 4294967296 is not in the range 0<=x<=4294967295"),
])
@fault("O01", "train", "loss and training settings out of range, NaN or infinite (--lr inf trained "
       "NaN weights before)", "error line with the limit; nothing written")
def test_training_settings_out_of_range(train_args, tmp_path, option, value, match):
    fails(train_args(**{option: value}), match)
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("option,value,match", [
    ("--flow-blocks", "0", "'--flow-blocks': 0 is not in the range 1<=x<=64"),
    ("--flow-hidden", "5000", "'--flow-hidden': 5000 is not in the range 1<=x<=4096"),
    ("--local-avg", "2", "local averaging must be 0 (off) or an odd size"),
    ("--input-size", "5000", "'--input-size': '5000': each side must lie in [1, 4096] pixels"),
    ("--input-size", "64x0", "'--input-size': '64x0': each side must lie in [1, 4096] pixels"),
    ("--input-size", "64x64x64", "'--input-size': '64x64x64' is neither a side nor height×width"),
    ("--input-size", "64x100", "input size 64×100 is not a multiple of the stride 8"),
    ("--input-size", "60", "not a multiple of the stride"),
    ("--subnet-kernel", "2", "subnet kernel must be odd"),
    ("--layers", "a,b", "--layers must be comma-separated ints"),
    ("--layers", "9", "has feature stages 0..4"),
])
@fault("O02", "train", "model settings out of range (flow size, local averaging, input size, "
       "kernel, stages)", "error line with the limit; nothing written")
def test_model_settings_out_of_range(train_args, tmp_path, option, value, match):
    fails(train_args(**{option: value}), match)
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("args, match", [
    (["evaluate", "--ckpt", "m.pt", "--batch-size", "0"], "'--batch-size': 0 is not in the range 1<=x<=65536"),
    (["evaluate", "--ckpt", "m.pt", "--batch-size", "-1"], "'--batch-size': -1 is not in the range 1<=x<=65536"),
    (["analyze", "--ckpt", "m.pt", "--max-images", "0"], "'--max-images': 0 is not in the range 1<=x<=10000000"),
    (["analyze", "--ckpt", "m.pt", "--bootstrap", "-5"], "'--bootstrap': -5 is not in the range 0<=x<=100000"),
    (["report", "--ckpt", "m.pt", "--bootstrap", "1000000"], "'--bootstrap': 1000000 is not in the range"),
    (["report", "--ckpt", "m.pt", "--seed", "-1"], "'--seed': -1 is not in the range 0<=x<=4294967295"),
    (["study", "--data", ".", "--out", "o", "--n-boot", "-1"], "'--n-boot': -1 is not in the range"),
    (["train", "--data", "d", "--out", "m.pt", "--lr", "0"], "'--lr': 0.0 is not in the range x>0"),
    (["data", "demo", "--out", "d", "--seed", "-2"], "'--seed': -2 is not in the range 0<=x<=4294967295"),
    (["demo", "--workers", "0"], "'--workers': 0 is not in the range 1<=x<=1024"),
    (["study", "--data", ".", "--out", "o", "--epochs", "10" * 10], "is not in the range 1<=x<=100000"),
    (["evaluate", "--ckpt", "m.pt", "--no-such-option"], "No such option '--no-such-option'"),
])
@fault("O03", "evaluate, analyze, report, study, train, data demo, demo",
       "counts, seeds and resamples out of range; an unknown option",
       "error line with the allowed range and a --help hint; nothing read or written")
def test_numeric_options_out_of_range_are_one_error_line(tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    result = fails(args, match)
    assert "--help)" in result.stderr and "Usage:" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-1", "two", "99999999999999999999"])
@fault("O04", "all (--threads)", "--threads 0, -1, a word or beyond 1024", "error line; nothing written")
def test_thread_count_must_be_auto_or_positive(train_args, tmp_path, value):
    fails(["--threads", value, *train_args()], "'--threads'")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("args,match", [
    (["--hypothesis", "H2"], "'--hypothesis': 'H2' is not one of"),
    (["--hypothesis", "H3", "--lambdas", "0,x"], "--lambdas must be comma-separated floats"),
    (["--hypothesis", "H4", "--lambdas", "0,0.5"], "--lambdas sets H3's loss conditions"),
])
@fault("O10", "analyze", "an unknown hypothesis; malformed --lambdas, or --lambdas without H3 (was "
       "ignored)", "error line; no output folder")
def test_analyze_option_errors(tiny_ckpt, tmp_path, args, match):
    fails(["analyze", "--ckpt", tiny_ckpt, "--out", tmp_path / "out", "--quiet", *args], match)
    assert not (tmp_path / "out").exists()


@fault("O05", "evaluate", "--json and --save-maps naming one file", "error line before the evaluation")
def test_json_and_maps_on_one_file(tiny_ckpt, tmp_path):
    fails(["evaluate", "--ckpt", tiny_ckpt, "--json", tmp_path / "x", "--save-maps", tmp_path / "x",
           "--quiet"], "name one file")
    assert list(tmp_path.iterdir()) == []


@fault("O06", "train, evaluate", "--out or --json under a regular file", "error line saying which path is a file")
def test_file_outputs_under_a_file(train_args, tiny_ckpt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fails(train_args(**{"--out": blocker / "model.pt"}), "is a file, not a folder")
    fails(["evaluate", "--ckpt", tiny_ckpt, "--json", blocker / "m.json", "--quiet"], "is a file, not a folder")


@fault("O07", "evaluate", "a real process (python -m cli) given a missing checkpoint", "exit 2, exactly one line on stderr")
def test_real_process_exit_code_and_single_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cli", "evaluate", "--ckpt", str(tmp_path / "x.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: checkpoint {tmp_path / 'x.pt'} does not exist"
