"""The honest base of the real-model study (issue 23, item 1): collapse measures, the balanced
held-out split, chance levels and ceilings, bootstrap intervals. Answers are exact
(constructed embeddings, explicit spectra) or a nominal coverage rate with its binomial
tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from realmodel.collapse import cloud_collapse, collapse, effective_rank, mean_pairwise_cosine
from realmodel.probes import mrr_chance, task_accuracy
from realmodel.stats import balanced_split, bootstrap_interval, bootstrap_mean
from realmodel.weights import random_bert


def orthonormal(n, H, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((H, n)))
    return q.T  # n orthonormal rows


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_k_orthonormal_directions_have_effective_rank_k_and_cosine_0(k):
    E = 3.0 * orthonormal(k, 20)  # the measures normalise rows: the scale is irrelevant
    if k == 1:
        E = np.vstack([E, 2 * E])  # one direction twice: cosine 1, rank 1
        assert mean_pairwise_cosine(E) == pytest.approx(1.0, abs=1e-14)
    else:
        assert mean_pairwise_cosine(E) == pytest.approx(0.0, abs=1e-14)
    assert effective_rank(E) == pytest.approx(k, rel=1e-12)


def test_cone_of_directions_has_the_explicit_cosine_and_effective_rank():
    """Rows cos(a) u_0 + sin(a) u_i, u orthonormal: every pairwise cosine is cos^2 a; the Gram
    matrix c^2 11^T + s^2 I has eigenvalues s^2 + n c^2 (once) and s^2 (n - 1 times), so the
    singular values are their square roots and the effective rank is explicit."""
    n, a = 8, 0.7
    U = orthonormal(n + 1, 30, seed=3)
    E = np.cos(a) * U[0] + np.sin(a) * U[1:]
    assert mean_pairwise_cosine(E) == pytest.approx(np.cos(a) ** 2, abs=1e-14)
    sigma = np.sqrt(np.r_[np.sin(a) ** 2 + n * np.cos(a) ** 2, np.full(n - 1, np.sin(a) ** 2)])
    p = sigma / sigma.sum()
    assert effective_rank(E) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-12)
    assert collapse(E) == {"mean_cosine": mean_pairwise_cosine(E),
                           "effective_rank": effective_rank(E)}


def test_cloud_collapse_is_collapse_per_layer():
    states = np.stack([3 * orthonormal(6, 10), np.tile(orthonormal(1, 10), (6, 1))])
    out = cloud_collapse(states)
    assert out["effective_rank"] == pytest.approx([6.0, 1.0], rel=1e-12)
    assert out["mean_cosine"] == pytest.approx([0.0, 1.0], abs=1e-14)


def test_collapse_errors_name_the_argument():
    with pytest.raises(ValueError, match="E has a zero row"):
        mean_pairwise_cosine(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        effective_rank(np.ones((1, 3)))
    with pytest.raises(ValueError, match="hidden_states must be a 3-d"):
        cloud_collapse(np.ones((4, 3)))


def test_balanced_split_is_balanced_disjoint_and_seeded():
    labels = np.repeat([0, 1], 100)  # sorted by label, like the Pang-Lee file
    train, held = balanced_split(labels, 160, 20, seed=4)
    assert len(train) == 160 and len(held) == 20 and not set(train) & set(held)
    assert np.bincount(labels[held]).tolist() == [10, 10]
    assert np.bincount(labels[train]).tolist() == [80, 80]
    again = balanced_split(labels, 160, 20, seed=4)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], held)
    assert not np.array_equal(balanced_split(labels, 160, 20, seed=5)[1], held)
    with pytest.raises(ValueError, match="n_held must be a multiple"):
        balanced_split(labels, 160, 21)
    with pytest.raises(ValueError, match="smallest label"):
        balanced_split(labels, 180, 30)


@pytest.mark.parametrize("m", [1, 2, 3, 10, 218])
def test_mrr_chance_is_the_mean_reciprocal_rank_of_a_random_order(m):
    """E[1/rank] for a uniform rank in 1..m, exactly: sum_k (1/k) / m."""
    exact = sum(1.0 / k for k in range(1, m + 1)) / m
    assert mrr_chance(m) == pytest.approx(exact, rel=1e-14)
    if m == 218:  # the figure: 0.027 for 218 candidates
        assert round(mrr_chance(m), 3) == 0.027


def test_percentile_bootstrap_covers_a_known_mean_at_its_nominal_rate():
    """400 samples of n = 50 N(mu, 1) values: the 95% interval of the mean covers mu at the
    rate P(|T_49| < 1.96 sqrt(49/50)) = 0.943 (percentile bootstrap ~ z-interval with the
    sample deviation, stats module docstring), within 3 binomial deviations (0.035 for 400
    trials at p = 0.943). Both the general and the vectorised routine."""
    from scipy.stats import t

    n, trials, mu = 50, 400, 1.5
    expected = 2 * t.cdf(1.959964 * np.sqrt((n - 1) / n), n - 1) - 1
    tol = 3 * np.sqrt(expected * (1 - expected) / trials)
    rng = np.random.default_rng(11)
    samples = mu + rng.standard_normal((trials, n))
    hits = [(lambda ci: ci["lo"] <= mu <= ci["hi"])(bootstrap_mean(x, n_boot=1000, seed=i))
            for i, x in enumerate(samples)]
    assert abs(np.mean(hits) - expected) < tol
    hits = [(lambda ci: ci["lo"] <= mu <= ci["hi"])(
        bootstrap_interval(lambda r, idx, x=x: float(x[idx].mean()), n, n_boot=400, seed=i))
        for i, x in enumerate(samples[:150])]
    assert abs(np.mean(hits) - expected) < 3 * np.sqrt(expected * (1 - expected) / 150)


def test_bootstrap_over_replicates_widens_the_interval():
    """Replicates with different means: resampling them adds their spread to the interval
    (the item-only interval of the mean of the replicates is narrower), and the estimate is
    the mean over replicates."""
    rng = np.random.default_rng(2)
    values = rng.standard_normal((3, 200)) + np.array([[0.0], [0.5], [1.0]])
    both = bootstrap_mean(values, n_boot=2000, seed=1)
    items_only = bootstrap_mean(values.mean(axis=0), n_boot=2000, seed=1)
    assert both["mean"] == pytest.approx(values.mean(), rel=1e-14)
    assert both["hi"] - both["lo"] > 2 * (items_only["hi"] - items_only["lo"])
    general = bootstrap_interval(lambda r, idx: float(values[r, idx].mean()), 200,
                                 n_replicates=3, n_boot=300, seed=1)
    assert general["mean"] == pytest.approx(both["mean"], rel=1e-14)
    with pytest.raises(ValueError, match="n_items must be an integer >= 2"):
        bootstrap_interval(lambda r, idx: 0.0, 1)


def test_task_accuracy_chance_and_a_separable_case():
    """A nearest-centroid classifier on a random tiny BERT: accuracy is the share of correct
    held-out labels, the chance level the majority share (1/2 when balanced); labels chosen as
    the classifier's own predictions give accuracy 1."""
    tiny = random_bert(n_layers=2, hidden=16, n_heads=4, vocab_size=50, seed=3)
    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 50, size=6).astype(np.int32) for _ in range(24)]
    labels = np.repeat([0, 1], 12)
    out = task_accuracy(tiny, ids[:16], labels[:16], ids[16:], np.r_[labels[:4], labels[-4:]])
    assert out["chance"] == 0.5 and out["ceiling"] == 1.0
    assert out["accuracy"] == pytest.approx(np.mean(out["correct"]), abs=0)
    predicted = [int(c == 0) ^ int(lbl) for c, lbl in zip(out["correct"],
                                                         np.r_[labels[:4], labels[-4:]])]
    again = task_accuracy(tiny, ids[:16], labels[:16], ids[16:], predicted)
    assert again["accuracy"] == 1.0
