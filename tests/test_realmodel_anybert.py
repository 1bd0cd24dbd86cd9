"""Not only MiniLM-L6 (issue 23, item 6): the layers, heads and pooling of the real-model code
come from the model's config. A tiny random BERT (3 layers, 4 heads, MiniLM's vocabulary so
the shipped tokenizer fits) saved as a safetensors folder runs through the study with several
training seeds and control draws; CLS pooling agrees between the numpy and JAX passes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from realmodel.weights import load_bert, random_bert, read_config, save_bert

EPS32 = float(np.finfo(np.float32).eps)


def test_read_config_and_pooling_round_trip(tmp_path):
    w = random_bert(n_layers=3, hidden=16, n_heads=4, seed=1, pooling="cls")
    save_bert(w, tmp_path)
    assert read_config(tmp_path) == {"n_layers": 3, "n_heads": 4, "hidden": 16,
                                     "pooling": "cls"}
    assert load_bert(tmp_path).pooling == "cls"
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_max_tokens": True}))
    with pytest.raises(ValueError, match="exactly one of"):
        read_config(tmp_path)
    with pytest.raises(ValueError, match="pooling must be one of"):
        random_bert(pooling="max")


def test_cls_pooling_is_the_first_token_in_numpy_and_jax():
    """CLS pooling: the embedding is the normalised last-layer [CLS] state; JAX (float32)
    agrees with the numpy float64 pass to the round-off bound of tests/test_realmodel.py
    (256 ulps per layer)."""
    from realmodel import jax_model, numpy_model

    w = random_bert(n_layers=3, hidden=16, n_heads=4, vocab_size=50, seed=2, pooling="cls")
    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 50, size=n).astype(np.int32) for n in (5, 9, 17)]
    for row in ids:
        f = numpy_model.forward(w, row)
        cls = f.hidden_states[-1, 0]
        # equal up to the float64 round-off of two evaluations of the norm
        assert np.allclose(f.embedding, cls / np.linalg.norm(cls), rtol=0, atol=4e-16)
    ref = numpy_model.encode(w, ids)
    assert np.max(np.abs(jax_model.encode(w, ids) - ref)) < 256 * EPS32 * 4


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *args], capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_study_on_a_tiny_bert_folder_with_seeds_and_draws(tiny_bert_folder, tmp_path):
    """The study reads 3 layers and 4 heads from the folder's config (lora.layers = "all"),
    trains two seeds, draws two controls per seed and summarises: every probe has a mean
    inside its bootstrap interval, the control row has 2 x 2 replicates, the held-out split is
    balanced, the spectra cover 3 x 4 heads and the layer deviation 3 + 1 clouds."""
    study = tmp_path / "tiny.toml"
    study.write_text(f"""
[study]
name = "tinybert"
kind = "realmodel"
stages = ["spectra", "train", "analyse"]
[model]
path = "{tiny_bert_folder}"
[train]
steps = 2
checkpoint_every = 2
sentences = 8
batch_size = 4
seeds = [0, 1]
[analyse]
scales = [1.0]
held_out = 4
qa_pairs = 30
bootstrap = 20
control_draws = 2
""")
    out = tmp_path / "out"
    proc = run_cli("run", str(study), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["lora"]["layers"] == [0, 1, 2]
    res = record["results"]
    assert len(res["spectra"]["heads"]) == 12
    assert set(res["train"]["seeds"]) == {"0", "1"}
    summary = res["analyse"]["summary"]
    assert set(summary) == {"base", "step_2", "trained_s1", "random_control"}
    assert summary["random_control"]["n_replicates"] == 4
    assert summary["trained_s1"]["n_replicates"] == 2
    for row in summary.values():
        for probe in row["probes"].values():
            assert probe["lo"] <= probe["mean"] <= probe["hi"]
        assert row["task"]["chance"] == 0.5  # balanced held-out set
        assert len(row["clouds"]["effective_rank"]) == 4
    v = res["analyse"]["variants"]["trained_s1"]
    assert len(v["probes"]["deviation"]["w2"]) == 4 and len(v["head_rotations"]) == 12
    assert (out / "ov_spectra.png").exists() and (out / "forgetting_probes.png").exists()
