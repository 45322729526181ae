"""Reading a sweep's results.csv: a hand-written file, its summaries and its errors."""
from pathlib import Path

import numpy as np
import pytest

from mechanism.errors import MechanismError
from mechanism.stats.summary import MetricSummary
from mechanism.sweep.results import read_sweep_results, summarize_sweep

HEADER = ("param,value,tail_weight,top_k_ratio,selection,seed,category,image_auroc,pixel_auroc,"
          "pixel_ap,aupro,train_seconds,extra")
ROWS = [
    "tail_top_k_ratio,0.02,0.7,0.02,topk,0,brick,0.98,0.97,0.55,0.80,12.5,x",
    "tail_top_k_ratio,0.02,0.7,0.02,topk,1,brick,0.96,0.95,0.51,0.78,13.0,x",
    "tail_top_k_ratio,0.02,0.7,0.02,topk,2,brick,0.97,0.96,0.56,0.79,12.0,x",
    "tail_top_k_ratio,0.1,0.7,0.1,topk,0,brick,0.95,0.94,0.40,0.70,12.0,x",
    "tail_top_k_ratio,0.1,0.7,0.1,random,0,brick,0.90,0.90,0.10,0.60,12.0,x",   # other selection
    "tail_top_k_ratio,0.1,0.7,0.1,topk,0,grass,0.50,0.50,0.05,0.10,12.0,x",     # other category
    "tail_weight,0.3,0.3,0.02,topk,0,brick,0.91,0.91,0.30,0.50,11.0,x",         # other param
]


def write(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_reads_and_summarises_over_seeds(tmp_path):
    runs = read_sweep_results(write(tmp_path, [HEADER, *ROWS]))
    assert len(runs) == 7 and runs[0].seed == 0 and runs[0].pixel_ap == 0.55
    summary = summarize_sweep(runs, "tail_top_k_ratio", "brick")
    assert list(summary) == [0.02, 0.1]
    ap = summary[0.02]["pixel_ap"]
    assert ap.n == 3
    assert ap.mean == pytest.approx(np.mean([0.55, 0.51, 0.56]))
    assert ap.std == pytest.approx(np.std([0.55, 0.51, 0.56], ddof=1))
    assert summary[0.1]["pixel_ap"] == MetricSummary(0.40, None, 1)
    assert summary[0.1]["pixel_ap"].format_percent() == "40.00% (n = 1)"
    assert ap.format_percent().startswith("54.00 ± 2.65% (n = 3)")
    lam = summarize_sweep(runs, "tail_weight", "brick")
    assert list(lam) == [0.3] and lam[0.3]["image_auroc"].mean == 0.91


@pytest.mark.parametrize("lines,match", [
    ([HEADER.replace("pixel_ap,", "")], "lacks the column"),
    ([HEADER, ROWS[0].replace("0.55", "abc")], "line 2: pixel_ap 'abc' is not a number"),
    ([HEADER, ROWS[0].replace("0.55", "nan")], "not a finite number"),
    ([HEADER, ROWS[0].replace("0.55", "55.0")], "outside \\[0, 1\\]"),
    ([HEADER, ROWS[0].replace(",0,brick", ",,brick")], "empty field seed"),
    ([HEADER, ROWS[0].replace(",0,brick", ",0.5,brick")], "not an integer"),
])
def test_malformed_files(tmp_path, lines, match):
    with pytest.raises(MechanismError, match=match):
        read_sweep_results(write(tmp_path, lines))


def test_missing_file_and_unmatched_or_duplicate_runs(tmp_path):
    with pytest.raises(MechanismError, match="do not exist"):
        read_sweep_results(tmp_path / "nowhere")
    runs = read_sweep_results(write(tmp_path, [HEADER, *ROWS]))
    with pytest.raises(MechanismError, match="no runs"):
        summarize_sweep(runs, "tail_top_k_ratio", "carpet")
    with pytest.raises(MechanismError, match="unknown swept parameter"):
        summarize_sweep(runs, "lr", "brick")
    dup = read_sweep_results(write(tmp_path / "dup", [HEADER, ROWS[0], ROWS[0]]))
    with pytest.raises(MechanismError, match="two runs"):
        summarize_sweep(dup, "tail_top_k_ratio", "brick")
