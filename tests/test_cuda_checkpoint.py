"""The CUDA-checkpoint promise: a checkpoint whose tensors are recorded on a GPU loads, evaluates
and analyses on a CPU-only machine with exactly the numbers of its CPU twin.

The CPU tests make such a file from a CPU checkpoint (``tag_for_cuda``); the ``cuda``-marked test
trains one on a GPU (skipped without CUDA, see ``conftest.py``; ``bench/gpu.sh`` runs it).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import app
from mechanism.eval.detector import load_detector
from mechanism.eval.evaluate import evaluate_detector
from mechanism.train.checkpoint import load_checkpoint
from mechanism.train.fit import train_detector
from mechanism.train.loss import TailLossConfig

from conftest import TINY_BACKBONE, TINY_FLOW, TINY_TRAIN

MANIFEST_RUN_FIELDS = ("checkpoints", "command", "created_utc")
"""Manifest fields that name the run rather than its numbers: the checkpoint paths and file
hashes (the twins are different files), the command line (it names them) and the time. The
tables name no checkpoint: they must match byte for byte."""


def storage_locations(path: Path) -> list[str]:
    """The location recorded for each storage in the torch file ``path`` ("cpu", "cuda:0", ...),
    read through ``torch.load``'s ``map_location`` callable (called once per storage with it)."""
    seen: list[str] = []
    torch.load(path, weights_only=True, map_location=lambda storage, loc: seen.append(loc) or storage)
    return seen


def tag_for_cuda(src: Path, dst: Path) -> Path:
    """Write ``dst``: the torch file ``src`` with every storage recorded on ``cuda:0``.

    ``src`` is read as plain data (``weights_only=True``, CPU tensors) and saved again by
    ``torch.save`` with its location tagger (``torch.serialization.location_tag``) answering
    ``"cuda:0"``. ``torch.save`` writes a CUDA storage's bytes from a CPU copy, so ``dst`` is the
    file a GPU machine would write for the same payload (the ``cuda`` test compares the two): the
    storages' bytes (zip entries ``data/N``) stay identical and ``data.pkl`` changes in its
    location strings. Re-saving leaves the pickle's encoding to torch; editing the bytes ``'cpu'``
    inside ``data.pkl`` would have to redo each string's length prefix, and would also change a
    payload string ``'cpu'`` that the pickler memoised as one object with the locations.
    """
    payload = torch.load(src, map_location="cpu", weights_only=True)
    with mock.patch.object(torch.serialization, "location_tag", lambda storage: "cuda:0"):
        torch.save(payload, dst)
    return dst


def zip_entries(path: Path) -> dict[str, bytes]:
    """The entries of a torch zip file by name below its top folder (``data.pkl``, ``data/0``,
    ...; the top folder is named after the file)."""
    with zipfile.ZipFile(path) as z:
        return {name.split("/", 1)[1]: z.read(name) for name in z.namelist()}


SAVE_ID = ".data/serialization_id"
"""The zip entry ``torch.save`` fills with a fresh random id on every save."""


def analyze_on_cpu(ckpt: Path, out: Path, cache: Path, baseline: Path | None = None) -> dict[str, bytes]:
    """``mechanism analyze --hypothesis all --device cpu``; returns every file it wrote below
    ``out`` (``tables/H1.json``, ..., ``manifest.json``) as bytes."""
    args = ["analyze", "--hypothesis", "all", "--ckpt", str(ckpt), "--out", str(out),
            "--bootstrap", "50", "--device", "cpu", "--cache-dir", str(cache), "--quiet"]
    result = CliRunner().invoke(app, args + (["--baseline-ckpt", str(baseline)] if baseline else []))
    assert result.exit_code == 0, (result.output, result.exception)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def assert_same_analysis(files: dict[str, bytes], twin: dict[str, bytes]) -> None:
    """Both runs wrote the same files, every table byte for byte, and manifests that differ in
    ``MANIFEST_RUN_FIELDS`` alone."""
    assert files.keys() == twin.keys() and len(files) == 13          # 4 × json/csv/md + manifest
    for name in files.keys() - {"manifest.json"}:
        assert files[name] == twin[name], name
    manifests = [json.loads(m["manifest.json"]) for m in (files, twin)]
    for m in manifests:
        assert set(MANIFEST_RUN_FIELDS) <= m.keys()
        for key in MANIFEST_RUN_FIELDS:
            del m[key]
    assert manifests[0] == manifests[1]


@pytest.fixture(scope="module")
def tagged(tiny_ckpt, tiny_baseline_ckpt, tmp_path_factory) -> tuple[Path, Path]:
    """``tiny_ckpt`` and ``tiny_baseline_ckpt`` recorded on ``cuda:0``."""
    folder = tmp_path_factory.mktemp("cuda-tagged")
    return (tag_for_cuda(tiny_ckpt, folder / "tail.pt"),
            tag_for_cuda(tiny_baseline_ckpt, folder / "base.pt"))


def test_the_tagged_file_is_recorded_on_cuda_with_the_same_bytes(tiny_ckpt, tagged):
    locations = storage_locations(tagged[0])
    assert set(storage_locations(tiny_ckpt)) == {"cpu"}
    assert locations == ["cuda:0"] * len(storage_locations(tiny_ckpt))
    entries, twin = zip_entries(tagged[0]), zip_entries(tiny_ckpt)
    assert entries.keys() == twin.keys() and any(k.startswith("data/") for k in entries)
    assert "data.pkl" in {k for k in entries if entries[k] != twin[k]} <= {"data.pkl", SAVE_ID}
    if torch.cuda.is_available():
        state = torch.load(tagged[0], weights_only=True)["flow_state"]
        assert {v.device.type for v in state.values()} == {"cuda"}
    else:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tagged[0], weights_only=True)     # no map_location: torch wants the GPU


def test_a_cuda_checkpoint_loads_and_evaluates_like_its_cpu_twin(tiny_ckpt, tagged, tiny_data, tiny_cache):
    ckpt, twin = load_checkpoint(tagged[0]), load_checkpoint(tiny_ckpt)
    assert ckpt.flow_state.keys() == twin.flow_state.keys()
    for k, v in ckpt.flow_state.items():
        assert v.device.type == "cpu" and torch.equal(v, twin.flow_state[k]), k
    ev, ev_twin = (evaluate_detector(load_detector(p, "cpu"), tiny_data, "brick", cache_dir=tiny_cache,
                                     progress=False) for p in (tagged[0], tiny_ckpt))
    assert ev.metrics.to_dict() == ev_twin.metrics.to_dict()
    assert np.array_equal(ev.patch_nll, ev_twin.patch_nll) and np.array_equal(ev.maps, ev_twin.maps)


def test_a_cuda_checkpoint_analyses_like_its_cpu_twin(tiny_ckpt, tiny_baseline_ckpt, tagged, tiny_cache,
                                                      tmp_path):
    files = analyze_on_cpu(tagged[0], tmp_path / "cuda", tiny_cache, baseline=tagged[1])
    twin = analyze_on_cpu(tiny_ckpt, tmp_path / "cpu", tiny_cache, baseline=tiny_baseline_ckpt)
    assert_same_analysis(files, twin)


@pytest.mark.cuda
def test_a_flow_trained_on_cuda_analyses_on_the_cpu_like_its_cpu_twin(tiny_data, tiny_cache, tmp_path):
    """Train on the GPU and save the checkpoint's payload from GPU memory, as a GPU machine's
    ``torch.save`` writes it: that file is ``tag_for_cuda``'s copy of the checkpoint to the byte,
    and analysing it on the CPU gives the tables of the checkpoint itself."""
    torch.manual_seed(0)
    ckpt = train_detector(tiny_data, "brick", tmp_path / "model.pt", TINY_BACKBONE, TINY_FLOW,
                          TailLossConfig(0.7, 0.1), TINY_TRAIN, "cuda", tiny_cache,
                          progress=False).checkpoint
    gpu = tmp_path / "gpu.pt"
    torch.save(torch.load(ckpt, map_location="cuda:0", weights_only=True), gpu)
    assert set(storage_locations(gpu)) == {"cuda:0"}
    saved, tagged = zip_entries(gpu), zip_entries(tag_for_cuda(ckpt, tmp_path / "tagged.pt"))
    assert saved.keys() == tagged.keys() and {k for k in saved if saved[k] != tagged[k]} <= {SAVE_ID}
    assert_same_analysis(analyze_on_cpu(gpu, tmp_path / "gpu", tiny_cache),
                         analyze_on_cpu(ckpt, tmp_path / "cpu", tiny_cache))
