"""The real-model study through the command line: config errors, a tiny run, resume."""

import json
import subprocess
import sys

import pytest

TINY = """
[study]
name = "tiny"
kind = "realmodel"
stages = {stages}
[train]
steps = 4
checkpoint_every = 2
sentences = 16
batch_size = 8
[analyse]
scales = [1.0, 4.0]
held_out = 4
qa_pairs = 30
bootstrap = 50
[flow]
heads = 1
kappas = [2.0]
steps = 2
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *args], capture_output=True,
                          text=True, timeout=900)


@pytest.mark.parametrize("edit, key", [
    (("kind = \"realmodel\"", "kind = \"other\""), "study.kind"),
    (("stages = {stages}", "stages = [\"spectra\", \"nap\"]"), "study.stages"),
    (("sentences = 16", "sentences = 199"), "train.sentences"),
    (("steps = 4", "steps = 0"), "train.steps"),
    (("heads = 1", "heads = 1\nwidth = 2"), "flow.width"),
    (("scales = [1.0, 4.0]", "scales = [1.0, -4.0]"), "analyse.scales"),
    (("held_out = 4", "held_out = 5"), "analyse.held_out"),
    (("steps = 4", "steps = 4\nseeds = [0, 0]"), "train.seeds"),
    (("bootstrap = 50", "bootstrap = 50\ncontrol_draws = 0"), "analyse.control_draws"),
    (("bootstrap = 50", "bootstrap = 50\nlevel = 1.5"), "analyse.level"),
    (("[train]", "[lora]\nlayers = [6]\n[train]"), "lora.layers"),
    (("[train]", "[model]\npath = \"/nonexistent\"\n[train]"), "model.path"),
])
def test_invalid_study_exits_2_naming_the_key(tmp_path, edit, key):
    text = TINY.replace(*edit).replace("{stages}", '["spectra"]')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    proc = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("meanfield: invalid study:") and key in proc.stderr
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.slow
def test_tiny_study_runs_and_resumes(tmp_path):
    """spectra, train (2 checkpoints), analyse (2 scalings and the random control) and flow
    (one head) write their results, the record and the figures; a second run recomputes
    nothing (the result files keep their modification times) and prints the same table."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace("{stages}", '["spectra", "train", "analyse", "flow"]'))
    out = tmp_path / "out"
    first = run_cli("run", str(path), "--out", str(out))
    assert first.returncode == 0, first.stderr
    record = json.loads((out / "record.json").read_text())
    assert set(record["results"]) == {"spectra", "train", "analyse", "flow"}
    analyse = record["results"]["analyse"]
    assert [r["step"] for r in analyse["checkpoints"]] == [2, 4]
    assert set(analyse["variants"]) == {"trained_s1", "trained_s4", "random_control"}
    s1, s4, control = (analyse["variants"][k] for k in ("trained_s1", "trained_s4",
                                                        "random_control"))
    for key, norm in s1["spectral_norms"].items():  # scaling by s scales ||Delta||_2 by s,
        assert s4["spectral_norms"][key] == pytest.approx(4 * norm, rel=1e-5)  # float32
        assert control["spectral_norms"][key] == pytest.approx(norm, rel=1e-5)  # same sigma
    assert len(s1["head_rotations"]) == 72 and len(s1["probes"]["deviation"]["w2"]) == 7
    assert s1["probes"]["deviation"]["w2"][0] == 0.0  # V updates leave the embeddings alone
    assert len(record["results"]["spectra"]["heads"]) == 72
    assert len(record["results"]["train"]["losses"]) == 4
    assert sorted(p.name for p in (out / "train" / "seed_0").glob("lora_*.npz")) == [
        "lora_00002.npz", "lora_00004.npz"]
    head = record["results"]["flow"]["heads"][0]
    lo, hi = head["bracket"]
    assert lo <= head["g"] <= hi  # 2 bisection steps: a bracket 3 g / 4 wide around g
    for name in ("ov_gaps.png", "train_loss.png", "head_flow.png", "table.md",
                 "lora_eigenvalues.png", "forgetting_probes.png", "layer_deviation.png",
                 "head_rotations.png", "ov_spectra.png", "probes_by_step.png"):
        assert (out / name).exists()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json") if p.name != "record.json"}
    second = run_cli("run", str(path), "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert second.stdout.split("wrote")[0] == first.stdout.split("wrote")[0]
