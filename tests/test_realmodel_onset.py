"""The onset analysis (issue 23, item 3), on data whose answer is known: the threshold and
power-law fits recover planted curves, the verdict follows its stated rule at the rates that
rule implies, the slope across units recovers a planted one, and the mode criterion is exact
(or a proven bound) on matrices with explicit eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest

from realmodel.criterion import mode_criterion
from realmodel.observables import top_mode_rotation
from realmodel.onset import fit_onset, fit_power, fit_threshold, onset_slope, power_curve

#: the onset study's grid of eps / g: 1/16 to 32 in steps of sqrt(2)
X = np.geomspace(1 / 16, 32, 19)
SIGMA = 0.03
TRIALS = 20


def binomial_slack(p, n):
    """3 binomial standard deviations of a rate p over n trials."""
    return 3 * np.sqrt(p * (1 - p) / n)


def test_noise_free_curves_are_recovered_exactly():
    thr = fit_threshold(X, 0.3 * np.maximum(X - 1.0, 0.0) ** 1.5, n_boot=10)
    assert thr["x_star"] == pytest.approx(1.0, abs=1e-4)
    assert thr["p"] == pytest.approx(1.5, rel=1e-3) and thr["A"] == pytest.approx(0.3, rel=1e-3)
    pw = fit_power(X, power_curve(X, 0.2, 1.3))
    assert pw["p"] == pytest.approx(1.3, rel=1e-5) and pw["A"] == pytest.approx(0.2, rel=1e-5)


def test_planted_threshold_is_found_and_its_interval_covers_it():
    """F = 0.3 (x - 1)_+ + N(0, 0.03^2): the verdict is "threshold" (delta AIC far above 2 and
    8 points below the onset) in every trial, and the 95% interval of x* covers 1 at its
    nominal rate within 3 binomial deviations."""
    rng = np.random.default_rng(0)
    verdicts, covered = [], []
    for seed in range(TRIALS):
        y = 0.3 * np.maximum(X - 1.0, 0.0) + SIGMA * rng.standard_normal(X.size)
        out = fit_onset(X, y, n_boot=50, seed=seed)
        verdicts.append(out["verdict"])
        covered.append(out["threshold"]["lo"] <= 1.0 <= out["threshold"]["hi"])
    assert verdicts == ["threshold"] * TRIALS
    assert np.mean(covered) >= 0.95 - binomial_slack(0.95, TRIALS)


def test_planted_power_law_gets_the_power_law_verdict():
    """F = 0.2 x^1.3 + N(0, 0.03^2). Under a power law d + 2 (d = AIC_power - AIC_threshold)
    is a likelihood ratio for a parameter at its boundary: asymptotically 0 or chi2_1 with
    probability 1/2 each, so d < 0 ("power law") with probability 1/2 + P(chi2_1 < 2)/2 = 0.92
    and d > 2 with probability P(chi2_1 > 4)/2 = 0.023; the rates over 20 trials must be
    within 3 binomial deviations of these."""
    rng = np.random.default_rng(1)
    verdicts = []
    for seed in range(TRIALS):
        y = 0.2 * X ** 1.3 + SIGMA * rng.standard_normal(X.size)
        out = fit_onset(X, y, n_boot=50, seed=seed)
        assert out["delta_aic"] >= -2 - 1e-6  # nested models
        assert out["power"]["p"] == pytest.approx(1.3, abs=0.05)
        verdicts.append(out["verdict"])
    rate = verdicts.count("power law") / TRIALS
    assert rate >= 0.92 - binomial_slack(0.92, TRIALS)
    assert verdicts.count("threshold") / TRIALS <= 0.023 + binomial_slack(0.023, TRIALS)


def test_fit_errors_name_the_argument():
    with pytest.raises(ValueError, match="x must be > 0"):
        fit_power(np.r_[0.0, X], np.r_[0.0, X])
    with pytest.raises(ValueError, match="y must have shape"):
        fit_onset(X, X[:-1])
    with pytest.raises(ValueError, match="at least 4 distinct"):
        fit_threshold([1.0, 2.0, 2.0], [0.0, 1.0, 1.0])


@pytest.mark.parametrize("slope", [1.0, 0.0])
def test_onset_slope_recovers_a_planted_slope(slope):
    """eps* = 0.8 g^s e^{N(0, 0.1^2)} over 12 gaps from 0.05 to 0.5: the 95% interval covers s
    at its nominal rate (3 binomial deviations over 30 trials), and it excludes the other
    hypothesis (1 - s) every time (the interval half-width, about 2 x 0.1 / (sd log g
    sqrt 12) = 0.09, is far below 1)."""
    g = np.geomspace(0.05, 0.5, 12)
    rng = np.random.default_rng(2)
    covered = []
    for seed in range(30):
        eps = 0.8 * g ** slope * np.exp(0.1 * rng.standard_normal(g.size))
        out = onset_slope(g, eps, n_boot=500, seed=seed)
        covered.append(out["lo"] <= slope <= out["hi"])
        assert not out["lo"] <= 1 - slope <= out["hi"]
    assert np.mean(covered) >= 0.95 - binomial_slack(0.95, 30)


# ----------------------------------------------------------------------- the mode criterion

@pytest.mark.parametrize("a, e", [(0.0, 0.1), (0.0, 0.31), (-0.2, 0.05), (-0.31, 0.0),
                                  (0.2, 0.6), (0.1, 0.35)])
def test_criterion_is_exact_for_a_diagonal_perturbation(a, e):
    """M = diag(1, 0.7, 0.2), Delta = diag(a, e, 0) with e >= 0: b = c = 0, the eigenvalues are
    1 + a, 0.7 + e, 0.2 explicitly, so the top mode flips exactly when 1 + a < 0.7 + e, i.e.
    when g + a < ||E|| = e; the criterion says kept exactly then, and agrees with the
    homotopy continuation of top_mode_rotation."""
    M, Delta = np.diag([1.0, 0.7, 0.2]), np.diag([a, e, 0.0])
    out = mode_criterion(M, Delta)
    assert out["gap"] == pytest.approx(0.3, abs=1e-15)
    assert (out["a"], out["b"], out["c"]) == (pytest.approx(a, abs=1e-15), 0.0, 0.0)
    assert out["E"] == pytest.approx(e, abs=1e-15)
    exact_kept = 1 + a > 0.7 + e
    assert out["kept"] == exact_kept
    assert top_mode_rotation(M, Delta)["flipped"] == (not exact_kept)


@pytest.mark.parametrize("b", [0.01, 0.05, 0.1, 0.2])
def test_criterion_bounds_the_rotation_of_a_symmetric_2x2(b):
    """M = diag(1, 1 - g), Delta = [[a, b], [b, e]]: the top eigenvector turns by theta with
    tan theta = 2b / (d + sqrt(d^2 + 4 b^2)), d = g + a - e (explicit 2 x 2 eigenvectors).
    The criterion's a, ||b||, ||E|| are a, |b|, |e|; whenever it holds, tan theta <=
    2|b| / (g + a - |e|) < 1 (Stewart's bound), so the top mode stays within 45 degrees."""
    g, a, e = 0.3, 0.05, 0.02
    M = np.diag([1.0, 1 - g])
    Delta = np.array([[a, b], [b, e]])
    out = mode_criterion(M, Delta)
    assert (out["a"], out["b"], out["c"], out["E"]) == pytest.approx((a, b, b, e), abs=1e-15)
    assert out["margin"] == pytest.approx(g + a - 2 * b - e, abs=1e-15)
    d = g + a - e
    tan_theta = 2 * b / (d + np.sqrt(d ** 2 + 4 * b ** 2))
    w, V = np.linalg.eigh(M + Delta)
    assert abs(V[1, -1] / V[0, -1]) == pytest.approx(tan_theta, rel=1e-12)
    if out["kept"]:
        assert tan_theta <= 2 * b / (g + a - e) < 1
    assert out["kept"] == (b < (g + a - e) / 2)


def test_criterion_in_eigen_coordinates_of_a_non_normal_matrix():
    """M = R diag(1, 0.6, 0.1) R^{-1} with a far-from-orthogonal R, Delta = R diag(a, e, 0)
    R^{-1}: in the eigen-coordinates b = c = 0 and the eigenvalues are 1 + a, 0.6 + e, 0.1,
    so the criterion is exact although ||Delta||_2 is several times |a| + |e| (the
    eigenvector condition number kappa(R) is reported)."""
    R = np.array([[1.0, 0.9, 0.2], [0.0, 0.3, 0.5], [0.1, 0.1, 1.0]])
    R = R / np.linalg.norm(R, axis=0)
    Rinv = np.linalg.inv(R)
    M = R @ np.diag([1.0, 0.6, 0.1]) @ Rinv
    for a, e in ((0.0, 0.3), (0.0, 0.45), (-0.1, 0.25), (-0.1, 0.35)):
        out = mode_criterion(M, R @ np.diag([a, e, 0.0]) @ Rinv)
        assert out["b"] < 1e-12 and out["c"] < 1e-12
        assert out["a"] == pytest.approx(a, abs=1e-12) and out["E"] == pytest.approx(e, abs=1e-12)
        assert out["kept"] == (1 + a > 0.6 + e)
        assert out["kappa"] == pytest.approx(np.linalg.cond(R), rel=1e-10) and out["kappa"] > 3


def test_criterion_for_a_complex_top_mode_is_not_evaluated_and_errors_name_arguments():
    M = np.array([[1.0, -0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.2]])  # 1 +- 0.5i on top
    out = mode_criterion(M, np.zeros((3, 3)))
    assert out["kept"] is None and out["gap"] == pytest.approx(0.8, abs=1e-12)
    with pytest.raises(ValueError, match="Delta must have shape"):
        mode_criterion(M, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="M must be square"):
        mode_criterion(np.zeros((2, 3)), np.zeros((2, 3)))
