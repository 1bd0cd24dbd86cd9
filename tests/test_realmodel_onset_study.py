"""The onset study end to end (issue 23, item 3) on a tiny random BERT folder (3 layers, 4
heads; MiniLM's vocabulary so its tokenizer fits): the quick mode writes onset.json in the
schema of the issue and a second run recomputes nothing; a layer unit runs too; bad keys are
refused before any work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


STUDY = """
[study]
name = "tiny-onset"
kind = "onset"
[model]
path = "{folder}"
[units]
layers = {layers}
heads = {heads}
[train]
steps = 2
batch_size = 4
sentences = 8
[sweep]
eps_over_g = [0.25, 1.0, 4.0, 16.0]
random_draws = 1
held_out = 4
qa_pairs = 20
[fit]
bootstrap = 20
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *args], capture_output=True,
                          text=True, timeout=900)


def check_schema(result, n_eps):
    for u in result["units"]:
        assert set(u) >= {"unit", "layer", "head", "gap", "eps", "probes", "collapse",
                          "criterion", "fit", "verdict"}
        assert len(u["eps"]) == n_eps and u["gap"] > 0
        assert u["eps"] == pytest.approx([x * u["gap"] for x in u["eps_over_g"]], rel=1e-12)
        for p in u["probes"].values():
            assert {"mean", "lo", "hi", "chance"} <= set(p) and len(p["mean"]) == n_eps
            assert all(lo <= m <= hi for lo, m, hi in zip(p["lo"], p["mean"], p["hi"]))
        assert set(u["collapse"]) == {"mean_cosine", "effective_rank"}
        assert set(u["criterion"]) == {"a", "b", "E", "kept"}
        assert set(u["fit"]["threshold"]) >= {"eps_star", "lo", "hi", "aic"}
        assert "aic" in u["fit"]["power"]
        assert u["verdict"] in ("threshold", "power law", "undecided")
    assert "slope_log_eps_star_vs_log_gap" in result


@pytest.mark.slow
def test_quick_onset_study_runs_and_resumes(tiny_bert_folder, tmp_path):
    study = tmp_path / "onset.toml"
    study.write_text(STUDY.format(folder=tiny_bert_folder, layers="[0, 1, 2]", heads=4))
    out = tmp_path / "out"
    first = run_cli("run", str(study), "--out", str(out), "--quick")
    assert first.returncode == 0, first.stderr
    result = json.loads((out / "quick" / "onset.json").read_text())
    assert [u["head"] is not None for u in result["units"]] == [True]  # quick: one head
    check_schema(result, 4)
    assert (out / "quick" / "onset.png").exists()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "quick" / "onset").rglob("*.json")}
    assert len(stamps) == 1 + 4 * 2  # training, 4 eps x (trained + 1 random)
    second = run_cli("run", str(study), "--out", str(out), "--quick")
    assert second.returncode == 0, second.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert second.stdout.split("wrote")[0] == first.stdout.split("wrote")[0]


@pytest.mark.slow
def test_onset_study_with_layer_units(tiny_bert_folder, tmp_path):
    """Every layer as a unit and three heads: the layer's gap is that of W_V W_O (H x H), and
    the slope across units is fitted or null as the rule says."""
    study = tmp_path / "onset.toml"
    study.write_text(STUDY.format(folder=tiny_bert_folder, layers='"all"', heads=1))
    out = tmp_path / "out"
    proc = run_cli("run", str(study), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "onset.json").read_text())
    assert [(u["layer"], u["head"]) for u in result["units"]][:3] == [(0, None), (1, None),
                                                                      (2, None)]
    check_schema(result, 4)


@pytest.mark.parametrize("edit, key", [
    (("heads = {heads}", "heads = -1"), "units.heads"),
    (("layers = {layers}", "layers = [3]"), "units.layers"),
    (("bootstrap = 20", "bootstrap = 20\nprobe = \"nope\""), "fit.probe"),
    (("eps_over_g = [0.25, 1.0, 4.0, 16.0]", "eps_over_g = [1.0, 2.0]"), "sweep.eps_over_g"),
    (("held_out = 4", "held_out = 3"), "sweep.held_out"),
])
def test_invalid_onset_study_exits_2_naming_the_key(tiny_bert_folder, tmp_path, edit, key):
    text = STUDY.replace(*edit).format(folder=tiny_bert_folder, layers="[0]", heads=1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    proc = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("meanfield: invalid study:") and key in proc.stderr
    assert not (tmp_path / "out").exists()


def test_quick_is_refused_for_other_kinds(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[study]\nname = "x"\nkind = "realmodel"\n')
    proc = run_cli("run", str(path), "--quick", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "'--quick'" in proc.stderr
