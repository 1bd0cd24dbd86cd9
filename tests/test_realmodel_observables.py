"""Observables of a LoRA update (realmodel.observables): spectra of the update, head rotations
against first-order perturbation theory and exactly constructed mode flips, forgetting probes
and layer-wise token-cloud deviations.

Tolerances:

- round-off: eigenvalues and norms of an r x r core against the dense H x H update agree to
  a few ulps of ||Delta|| (1e-12 relative leaves a wide margin for H = 12);
- first order: rotation = predicted_rotation (1 + c ||Delta|| + O(||Delta||^2)), so the
  relative error e(s) of an update scaled by s is c s + O(s^2) and e(s) / e(s/2) = 2 (1 + O(s));
  at ||Delta_h|| / g_h <= 0.05 the O(s) correction is a few percent, [1.6, 2.4] leaves room;
- exact zeros: unchanged layers give bitwise equal token clouds, so distances are exactly 0.
"""

import numpy as np
import pytest

from realmodel import lora, observables, spectra, tokenizer
from realmodel.numpy_model import forward
from realmodel.weights import load_minilm, random_bert


@pytest.fixture(scope="module")
def tiny():
    return random_bert(n_layers=3, hidden=32, n_heads=4, intermediate=64, vocab_size=50,
                       max_positions=64, seed=1, dtype=np.float64)


def random_update(config, weights, seed):
    """LoRA factors with B ~ N(0, 1) (a non-trivial update of rank r on every key)."""
    params = lora.init_lora(config, weights, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 100)
    return {k: {"A": ab["A"], "B": rng.standard_normal(ab["B"].shape)}
            for k, ab in params.items()}


# ---------------------------------------------------------------------------- the update

def test_lora_spectrum_is_the_nonzero_spectrum_of_the_dense_update(tiny):
    cfg = lora.LoraConfig(rank=3, alpha=5.0, layers=(0, 2), targets=("Q", "V"))
    params = random_update(cfg, tiny, seed=0)
    result = observables.lora_spectrum(params, cfg)
    assert sorted(result) == sorted(cfg.keys())
    for key, dense in lora.dense_updates(params, cfg).items():
        scale = np.linalg.norm(dense, 2)
        full = np.linalg.eigvals(dense)
        order = np.argsort(-np.abs(full))
        nonzero, zero = full[order[:cfg.rank]], full[order[cfg.rank:]]
        assert np.abs(zero).max() <= 1e-12 * scale  # rank r: the rest is round-off
        lam = np.array(result[key]["eigenvalues_re"]) + 1j * np.array(
            result[key]["eigenvalues_im"])
        assert lam.shape == (cfg.rank,) and np.all(np.diff(np.abs(lam)) <= 0)
        for value in nonzero:  # the same multiset, to round-off
            assert np.min(np.abs(lam - value)) <= 1e-12 * scale
        assert result[key]["spectral_norm"] == pytest.approx(scale, rel=1e-12)
        assert result[key]["frobenius"] == pytest.approx(np.linalg.norm(dense), rel=1e-12)
    at_init = observables.lora_spectrum(lora.init_lora(cfg, tiny), cfg)
    assert all(v["spectral_norm"] == 0 and not any(v["eigenvalues_re"])
               for v in at_init.values())
    with pytest.raises(ValueError, match="lora"):
        observables.lora_spectrum({"0.V": params["0.V"]}, cfg)
    with pytest.raises(ValueError, match="config"):
        observables.lora_spectrum(params, {"rank": 3})


def test_ov_spectra_before_and_after(tiny):
    cfg = lora.LoraConfig(rank=2, alpha=2.0, layers=(1,), targets=("V",))
    tuned = lora.merge_lora(tiny, random_update(cfg, tiny, seed=1), cfg)
    result = observables.ov_spectra(tiny, tuned)
    assert sorted(result) == sorted(f"{i}.{h}" for i in range(3) for h in range(4))
    for key, row in result.items():
        layer, head = map(int, key.split("."))
        for when, w in (("before", tiny), ("after", tuned)):
            lam = spectra.ov_spectrum(w, layer, head)
            np.testing.assert_array_equal(row[f"eigenvalues_{when}_re"], lam.real)
            np.testing.assert_array_equal(row[f"eigenvalues_{when}_im"], lam.imag)
            assert row[f"gap_{when}"] == spectra.spectral_gap(lam)
        changed = row["eigenvalues_before_re"] != row["eigenvalues_after_re"]
        assert changed == (layer == 1)  # only the adapted layer moves
    assert sorted(observables.ov_spectra(tiny, tuned, layers=[2])) == [f"2.{h}"
                                                                      for h in range(4)]
    with pytest.raises(ValueError, match="layers"):
        observables.ov_spectra(tiny, tuned, layers=[3])
    with pytest.raises(ValueError, match="tuned_weights"):
        observables.ov_spectra(tiny, random_bert(n_layers=2, hidden=32, n_heads=4))


# ---------------------------------------------------------------------------- head rotations

def test_head_rotations_follow_first_order_with_an_O_s_error(tiny):
    """rotation / predicted_rotation = 1 + c s + O(s^2): halving s halves the error (module
    docstring), on every head of two adapted layers, top modes real and complex."""
    cfg = lora.LoraConfig(rank=2, alpha=2.0, layers=(0, 1), targets=("V",))
    unit = random_update(cfg, tiny, seed=2)
    s = 0.05 / max(r["ratio"] for r in observables.head_rotations(tiny, unit, cfg))
    rows = [observables.head_rotations(tiny, lora.scale_lora(unit, f), cfg) for f in (s, s / 2)]
    assert [(r["layer"], r["head"]) for r in rows[0]] == [(i, h) for i in (0, 1)
                                                          for h in range(4)]
    kinds = set()
    for big, small in zip(*rows):
        m = tiny.head_matrices(big["layer"], big["head"])
        kinds.add(len(spectra.mode_indices(np.linalg.eigvals(m["W_V"] @ m["W_O"]))[0]))
        assert big["ratio"] <= 0.05 + 1e-12
        assert small["ratio"] == pytest.approx(big["ratio"] / 2, rel=1e-12)
        assert not big["flipped"] and not small["flipped"]
        errors = [abs(r["rotation"] / r["predicted_rotation"] - 1) for r in (big, small)]
        assert errors[1] < 0.1
        assert 1.6 <= errors[0] / errors[1] <= 2.4, (big["layer"], big["head"], errors)
        # the continued eigenvalue is the first-order one up to O(s^2)
        for r in (big, small):
            err = abs(complex(r["continued"]["re"], r["continued"]["im"])
                      - complex(r["first_order"]["re"], r["first_order"]["im"]))
            assert err <= 0.1 * r["ratio"] * r["gap"]
    assert kinds == {1, 2}  # both a real top eigenvalue and a top conjugate pair were tested


def test_zero_update_does_not_rotate_or_flip(tiny):
    """B = 0: the homotopy sees the same matrix at every step (bitwise), so the subspaces are
    equal; the principal-angle computation returns its round-off (arcsin of an O(u) residual)."""
    cfg = lora.LoraConfig(rank=2, alpha=2.0, layers=(0, 2), targets=("V",))
    for row in observables.head_rotations(tiny, lora.init_lora(cfg, tiny), cfg):
        assert row["delta_norm"] == 0 and row["ratio"] == 0 and row["predicted_rotation"] == 0
        assert row["rotation"] <= 1e-14
        assert row["flipped"] is False
        assert row["top_after"] == row["top_before"] == row["continued"]
    no_v = lora.LoraConfig(rank=2, alpha=2.0, layers=(0,), targets=("Q",))
    assert observables.head_rotations(tiny, lora.init_lora(no_v, tiny), no_v) == []
    with pytest.raises(ValueError, match="layers"):
        bad = lora.LoraConfig(rank=2, alpha=2.0, layers=(5,))
        observables.head_rotations(tiny, {"5.V": {"A": np.zeros((2, 32)),
                                                  "B": np.zeros((32, 2))}}, bad)


def _similar(blocks, seed):
    """(S J S^{-1}, S) for a block-diagonal J and a random well-conditioned S."""
    from scipy.linalg import block_diag
    J = block_diag(*blocks)
    S = np.eye(J.shape[0]) + 0.3 * np.random.default_rng(seed).standard_normal(J.shape)
    return S @ J @ np.linalg.inv(S), S


@pytest.mark.parametrize("factor", [0.5, 0.99, 1.01, 2.0])
def test_top_mode_flips_exactly_when_the_update_exceeds_the_gap(factor):
    """Diagonal M = diag(1, 0.6, 0.2, -0.3) (gap 0.4) and Delta = delta e_2 e_2^T
    (||Delta||_2 = delta): the second eigenvalue becomes 0.6 + delta, above 1 iff delta > g.
    The same with the modes made non-orthogonal (S M S^-1, S Delta S^-1), and with a top
    conjugate pair 1 +- 0.5i overtaken by a real eigenvalue."""
    g = 0.4
    delta = factor * g
    M, D = np.diag([1.0, 0.6, 0.2, -0.3]), np.diag([0.0, delta, 0.0, 0.0])
    r = observables.top_mode_rotation(M, D)
    assert r["gap"] == pytest.approx(g, abs=1e-15)
    assert r["delta_norm"] == pytest.approx(delta, rel=1e-15)
    assert r["ratio"] == pytest.approx(factor, rel=1e-14)
    assert r["flipped"] is (delta > g)
    assert r["continued"] == {"re": 1.0, "im": 0.0}
    assert r["top_after"]["re"] == pytest.approx(max(1.0, 0.6 + delta), abs=1e-15)
    M2, S = _similar([[[1.0]], [[0.6]], [[0.2]], [[-0.3]]], seed=0)
    r = observables.top_mode_rotation(M2, S @ D @ np.linalg.inv(S))
    assert r["flipped"] is (delta > g)
    assert r["continued"]["re"] == pytest.approx(1.0, abs=1e-12)
    M3, S = _similar([np.array([[1.0, -0.5], [0.5, 1.0]]), [[0.6]], [[0.2]]], seed=1)
    D3 = S @ np.diag([0.0, 0.0, delta, 0.0]) @ np.linalg.inv(S)
    r = observables.top_mode_rotation(M3, D3)
    assert r["flipped"] is (delta > g)
    assert complex(r["continued"]["re"], r["continued"]["im"]) == pytest.approx(1 + 0.5j,
                                                                              abs=1e-12)


def test_continuation_does_not_depend_on_the_step():
    """Large random updates (||Delta|| ~ ||M||: real parts cross, real eigenvalues collide into
    pairs): the default adaptive homotopy and one 16 times finer (max_step 1/256) follow the
    old top mode to the same eigenvalue of M + Delta (to eigenvalue round-off)."""
    rng = np.random.default_rng(5)
    flips = 0
    for _ in range(12):
        M, D = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
        coarse = observables.top_mode_rotation(M, D)
        fine = observables.top_mode_rotation(M, D, max_step=1 / 256, min_step=1e-9)
        assert fine["steps"] > coarse["steps"]
        for key in ("continued", "top_after"):
            assert complex(coarse[key]["re"], coarse[key]["im"]) == pytest.approx(
                complex(fine[key]["re"], fine[key]["im"]), abs=1e-10)
        assert coarse["flipped"] is fine["flipped"]
        flips += coarse["flipped"]
    assert 0 < flips < 12  # both outcomes occur, so the comparison is not vacuous


def test_top_mode_rotation_errors_name_the_argument():
    with pytest.raises(ValueError, match="Delta"):
        observables.top_mode_rotation(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="M"):
        observables.top_mode_rotation(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="two modes"):
        observables.top_mode_rotation(np.array([[1.0, -1.0], [1.0, 1.0]]), np.zeros((2, 2)))


# ---------------------------------------------------------------------------- token clouds

@pytest.fixture(scope="module")
def tiny_ids():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 50, size=n) for n in (5, 9, 14)]


def test_layer_deviation_is_exactly_zero_where_nothing_changed(tiny, tiny_ids):
    same = observables.layer_deviation(tiny, tiny, tiny_ids)
    assert same == {"w2": [0.0] * 4, "mean_geodesic": [0.0] * 4}
    cfg = lora.LoraConfig(rank=2, alpha=2.0, layers=(1, 2), targets=("V",))
    tuned = lora.merge_lora(tiny, random_update(cfg, tiny, seed=4), cfg)
    dev = observables.layer_deviation(tiny, tuned, tiny_ids)
    # embeddings and layer 0 untouched: hidden states 0 and 1 are bitwise equal
    assert dev["w2"][:2] == [0.0, 0.0] and dev["mean_geodesic"][:2] == [0.0, 0.0]
    assert min(dev["w2"][2:]) > 0 and min(dev["mean_geodesic"][2:]) > 0
    # W_2 <= the cost of the identity coupling, (mean d_i^2)^(1/2) >= mean d_i
    for layer in range(2, 4):
        x = np.concatenate([forward(tiny, ids).hidden_states[layer] for ids in tiny_ids])
        y = np.concatenate([forward(tuned, ids).hidden_states[layer] for ids in tiny_ids])
        cos = np.sum(x * y, axis=1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        d = np.arccos(np.clip(cos, -1, 1))
        assert dev["mean_geodesic"][layer] == pytest.approx(d.mean(), rel=1e-6)
        assert dev["w2"][layer] <= np.sqrt(np.mean(d ** 2)) * (1 + 1e-9)


def test_layer_deviation_errors(tiny, tiny_ids):
    with pytest.raises(ValueError, match="ids_list"):
        observables.layer_deviation(tiny, tiny, tiny_ids[0])
    with pytest.raises(ValueError, match="ids_list"):
        observables.layer_deviation(tiny, tiny, [])
    with pytest.raises(ValueError, match="tuned_weights"):
        observables.layer_deviation(tiny, "weights", tiny_ids)


# ---------------------------------------------------------------------------- MiniLM probes

#: question-answer pairs of the MiniLM tests (1697 tokens, ~1.5 s per model)
N_PAIRS = 100


@pytest.fixture(scope="module")
def minilm_pair():
    """MiniLM and a second BertWeights object with identical arrays (merge of a zero update):
    the probes' cache is per object, so the second one is computed afresh."""
    w = load_minilm()
    cfg = lora.LoraConfig(rank=2, alpha=32.0, layers=(3,), targets=("V",))
    twin = lora.merge_lora(w, lora.init_lora(cfg, w), cfg)
    assert twin is not w
    np.testing.assert_array_equal(twin.layers[3].W_V, w.layers[3].W_V)
    return w, twin


def test_minilm_similarity_probes_are_correlations_and_deterministic(minilm_pair):
    w, twin = minilm_pair
    probes = observables.similarity_probes(w)
    assert sorted(probes) == ["lee_pearson", "lee_spearman", "simlex999", "wordsim353"]
    assert all(np.isfinite(v) and -1 <= v <= 1 for v in probes.values())
    assert observables.similarity_probes(twin) == probes  # recomputed, bitwise the same


def test_minilm_retrieval_mrr(minilm_pair):
    """MRR in (0, 1], the same for identical weights, and above 10/n. A weak sanity bound,
    not a claim: random ranking of m <= n candidates gives H_m / m ~ (ln m + 0.58) / m, 0.05
    for m = 100, so 10/n = 0.1 is only twice chance; it catches a broken pipeline (misaligned
    questions and answers rank the true answer near the middle, MRR ~ chance), not a weak
    model."""
    w, twin = minilm_pair
    mrr = observables.retrieval_mrr(w, N_PAIRS)
    assert 0 < mrr <= 1 and mrr > 10 / N_PAIRS
    assert observables.retrieval_mrr(twin, N_PAIRS) == mrr
    with pytest.raises(ValueError, match="n_pairs"):
        observables.retrieval_mrr(w, 1)


def test_minilm_probe_all_bundles_the_probes(minilm_pair):
    w, twin = minilm_pair
    sentences = ["A quiet film about grief.", "The plot never recovers from its start."]
    held = tokenizer.encode_ids(tokenizer.load_tokenizer(), sentences)
    out = observables.probe_all(w, twin, held, n_pairs=N_PAIRS)
    assert sorted(out) == ["base", "deviation", "tuned"]
    expected = {**observables.similarity_probes(w),
                "retrieval_mrr": observables.retrieval_mrr(w, N_PAIRS)}
    assert out["base"] == out["tuned"] == expected
    assert out["deviation"] == {"w2": [0.0] * 7, "mean_geodesic": [0.0] * 7}
    again = observables.probe_all(w, twin, held, n_pairs=N_PAIRS, base=out["base"])
    assert again == out
    with pytest.raises(ValueError, match="base"):
        observables.probe_all(w, twin, held, n_pairs=N_PAIRS, base={"simlex999": 0.5})
