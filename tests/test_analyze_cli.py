"""``mechanism analyze`` end to end on the tiny checkpoints: tables, manifest, printed verdicts."""
import json

from click.testing import CliRunner

from cli.main import app


def test_analyze_all_with_baseline_writes_every_table(tiny_ckpt, tiny_baseline_ckpt, tiny_cache, tmp_path):
    out = tmp_path / "mechanism"
    result = CliRunner().invoke(app, [
        "analyze", "--hypothesis", "all", "--ckpt", str(tiny_ckpt), "--baseline-ckpt",
        str(tiny_baseline_ckpt), "--out", str(out), "--bootstrap", "50", "--cache-dir", str(tiny_cache),
        "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    for h in ("H1", "H3", "H4", "H7"):
        for ext in ("json", "csv", "md"):
            assert (out / "tables" / f"{h}.{ext}").is_file()
        assert f"## {h}" in result.output
        md = (out / "tables" / f"{h}.md").read_text()
        assert "**Verdict:" in md
        assert json.loads((out / "tables" / f"{h}.json").read_text())["context"]["n_patches"] == 16
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["checkpoints"]["baseline"]["sha256"] and manifest["hypotheses"] == ["H1", "H3", "H4", "H7"]
    assert manifest["n_boot"] == 50


def test_analyze_refuses_an_incompatible_baseline(tiny_ckpt, tmp_path):
    result = CliRunner().invoke(app, ["analyze", "--hypothesis", "H3", "--ckpt", str(tiny_ckpt),
                                      "--baseline-ckpt", str(tmp_path / "absent.pt"), "--quiet"])
    assert result.exit_code == 2 and "does not exist" in result.stderr
