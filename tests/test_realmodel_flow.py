"""The flow of a real head (realmodel.flow): the low-rank spectrum, the spectral perturbation,
the late slope eps - g and the time to deviation, against exact Dirac solutions."""

import math

import numpy as np
import pytest

from continuum import Attention
from realmodel import flow as F


def random_factors(H=9, r=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((H, r)), rng.standard_normal((r, H))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_rank_spectrum_is_the_spectrum_of_U_W(seed):
    """Right and left eigenvectors of V = U W, biorthonormal, the projectors idempotent and
    commuting with V, and V + eps P_k has the mode's eigenvalues moved by eps and every other
    nonzero eigenvalue unchanged. Round-off bounds of a backward-stable eigensolver, with the
    customary growth factor p(H) = 10 H: residuals p(H) u ||V|| |r| |l|, eigenvalues
    p(H) u ||V + eps P|| kappa_k (kappa_k = |l_k| |r_k| / |l_k^T r_k|, the eigenvalue's
    condition number)."""
    U, W = random_factors(seed=seed)
    V = U @ W
    H = V.shape[0]
    p_u = 10 * H * np.finfo(float).eps
    sp = F.low_rank_spectrum(U, W)
    lam = sp.eigenvalues
    tol = p_u * np.linalg.norm(V, 2) * np.abs(sp.right).max() * np.abs(sp.left).max()
    assert np.abs(V @ sp.right - sp.right * lam).max() <= tol
    assert np.abs(sp.left.T @ V - lam[:, None] * sp.left.T).max() <= tol
    assert np.abs(sp.left.T @ sp.right - np.eye(len(lam))).max() <= tol
    assert sum(len(m) for m in sp.modes) == len(lam)
    for k, mode in enumerate(sp.modes):
        P = sp.projector(k)
        assert np.abs(P @ P - P).max() <= tol and np.abs(P @ V - V @ P).max() <= tol
        if len(mode) == 2:
            assert lam[mode[0]].imag > 0 and lam[mode[1]] == pytest.approx(np.conj(lam[mode[0]]))
        moved = np.linalg.eigvals(V + 0.3 * P)
        expected = lam + 0.3 * np.isin(np.arange(len(lam)), mode)  # same eigenvectors
        kappa = np.linalg.norm(sp.left, axis=0) * np.linalg.norm(sp.right, axis=0)
        scale = np.linalg.norm(V + 0.3 * P, 2)
        for value, cond in zip(expected, kappa):  # the nonzero spectrum of V + 0.3 P
            assert np.min(np.abs(moved - value)) <= p_u * scale * cond
    with pytest.raises(ValueError, match="U .* and W"):
        F.low_rank_spectrum(U, W[:, :-1])


def test_low_rank_spectrum_of_a_head_is_ov_spectrum():
    """On MiniLM: the eigenvalues from the factors (W_O^h, W_V^h) are realmodel.ov_spectrum's
    (both eig of W_V^h W_O^h in float64, the same ordering)."""
    from realmodel import load_minilm, ov_spectrum

    weights = load_minilm()
    model, sp = F.head_flow(weights, 2, 6)
    lam = ov_spectrum(weights, 2, 6)
    assert np.abs(sp.eigenvalues - lam).max() <= 1e-12 * np.abs(lam).max()
    assert model.d == weights.hidden and np.linalg.matrix_rank(model.V) == weights.head_dim


def dirac_setting(g=0.2, H=5):
    """V = diag(1, 1 - g, 0.3, 0.1, 0) in R^5 as U W (rank 4), SA: one token moves by
    x' = P_x^perp V x."""
    lam = np.array([1.0, 1.0 - g, 0.3, 0.1])
    U = np.zeros((H, 4))
    U[:4, :4] = np.diag(lam)
    W = np.zeros((4, H))
    W[:4, :4] = np.eye(4)
    return Attention(beta=1.0, d=H, V=U @ W), F.low_rank_spectrum(U, W)


@pytest.mark.parametrize("eps", [0.1, 0.3, 0.5])
def test_late_slope_is_eps_minus_g_for_a_dirac(eps):
    """d/dt log(|Pi_2 x| / |Pi_1 x|) = eps - g exactly for one token; DOP853 at rtol 1e-8
    leaves errors ~1e-8 relative in the components, so the fitted slope over [T/2, T] is
    within 1e-6 of eps - g."""
    model, sp = dirac_setting()
    x0 = np.array([[0.6, 0.5, 0.4, 0.3, 0.37]])
    x0 /= np.linalg.norm(x0)
    run = F.flow(model, x0, 10.0, eps=eps, spectrum=sp)
    assert F.late_slope(run.times, run.points, sp) == pytest.approx(eps - sp.gap(), abs=1e-6)


def test_switch_bracket_contains_g_for_a_dirac():
    """The slope's sign changes exactly at eps = g for a Dirac; the bisection's midpoints in
    kappa in [0, 3] are never 1 (3 m / 2^k), the nearest after 6 steps is 3 g / 128 away, where
    the slope is >= 3 g / 128 >> its 1e-6 error: the bracket contains g and is 3 g / 2^6 wide.
    """
    model, sp = dirac_setting()
    x0 = np.array([[0.6, 0.5, 0.4, 0.3, 0.37]])
    x0 /= np.linalg.norm(x0)
    (lo, hi), tried = F.switch_bracket(model, sp, x0, 10.0, steps=6)
    g = sp.gap()
    assert lo < g < hi and hi - lo == pytest.approx(3 * g / 64)
    assert len(tried) == 8


def test_deviation_time_of_a_dirac_in_a_plane():
    """Tokens in the (e1, e2) plane stay there: the base angle is atan(tan th0 e^{-g t}), the
    fine-tuned one atan(tan th0 e^{(eps - g) t}), and W_2 between the two Diracs is the angle
    between them. T_dev(delta) against the root of that exact equation; the linear
    interpolation between 401 saved times errs by O(dt^2 D'' / D') <= 1e-3 T here."""
    from scipy.optimize import brentq

    g, kappa, delta, th0 = 0.2, 2.0, 0.3, 0.2
    model, sp = dirac_setting(g)
    x0 = np.array([[math.cos(th0), math.sin(th0), 0.0, 0.0, 0.0]])
    eps = kappa * g

    def gap_angle(t):
        return (math.atan(math.tan(th0) * math.exp((eps - g) * t))
                - math.atan(math.tan(th0) * math.exp(-g * t)))

    exact = brentq(lambda t: gap_angle(t) - delta, 0.0, 100.0)
    horizon = 12.0
    got = F.deviation_time(model, sp, x0, kappa, delta, horizon=horizon, n_times=401)
    assert got == pytest.approx(exact, abs=1e-3 * horizon / ((kappa - 1) * g))
    with pytest.raises(ValueError, match="kappa"):
        F.deviation_time(model, sp, x0, 1.0, delta)
    # several kappa from one base run: the same T_dev as one run per kappa
    both = F.deviation_times(model, sp, x0, [kappa, 3.0], delta, horizon=horizon, n_times=401)
    assert both[0]["T_dev"] == pytest.approx(got, rel=1e-6)
    assert both[1]["late_slope"] == pytest.approx(2 * g, abs=1e-6)


def test_reduced_flow_is_the_flow():
    """The flow in coordinates of the invariant subspace span(x_i(0)) + range(U) (k = N + r = 10
    of H = 40 dimensions) mapped back by B equals the full flow, for the base and a perturbed
    model, to the integrators' accuracy (DOP853 at rtol 1e-8: positions to ~1e-7), and the
    mode ratios agree as well."""
    rng = np.random.default_rng(3)
    H, r, N = 40, 4, 6
    U, W = rng.standard_normal((H, r)) / 3, rng.standard_normal((r, H)) / 3
    sp = F.low_rank_spectrum(U, W)
    A = rng.standard_normal((H, H)) / H
    model = Attention(beta=1.0, d=H, Q=A, V=U @ W)
    x0 = rng.standard_normal((N, H))
    x0 /= np.linalg.norm(x0, axis=1, keepdims=True)
    small, sp_small, z0, B = F.reduce(model, sp, x0)
    assert B.shape == (H, N + r)
    assert np.abs(z0 @ B.T - x0).max() <= 1e-13
    for eps in (0.0, 0.5):
        full = F.flow(model, x0, 3.0, 4, eps=eps, spectrum=sp)
        red = F.flow(small, z0, 3.0, 4, eps=eps, spectrum=sp_small)
        assert np.abs(red.points @ B.T - full.points).max() <= 1e-6
        assert np.abs(F.mode_ratio(red.points[-1], sp_small)
                      - F.mode_ratio(full.points[-1], sp)).max() <= 1e-6


def test_head_model_kernel_is_the_heads_logit():
    """<Q x, K y> of the head model is <W_Q^h x, W_K^h y> (the query on the left)."""
    rng = np.random.default_rng(4)
    Wq, Wk, Wv = (rng.standard_normal((3, 7)) for _ in range(3))
    Wo = rng.standard_normal((7, 3))
    model = F.head_model(Wq, Wk, Wv, Wo)
    x, y = rng.standard_normal(7), rng.standard_normal(7)
    assert (model.Q @ x) @ (model.K @ y) == pytest.approx((Wq @ x) @ (Wk @ y), rel=1e-12)
    assert np.allclose(model.V, Wo @ Wv, rtol=0, atol=0)
