"""LayerNorm placement (issue 24): "post" unchanged, and the equiangular configuration of n
tokens against its closed ODEs (docs/design.md, "LayerNorm placement") at 1e-8 for every
placement, SA and USA."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from continuum import Attention
from continuum.kernels import attention_field
from particles import simulate
from particles.integrate import _retract
from particles.norms import NORMS, equiangular, equiangular_rhs

N_TOK, RHO0, BETA = 4, 0.2, 1.0
TIMES = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])


def equiangular_ode(t, y, norm, normalized, n=N_TOK):
    return equiangular_rhs(t, y, norm, normalized, n, BETA)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("norm", NORMS)
def test_equiangular_tokens_follow_the_closed_ode(norm, normalized):
    """Particles (DOP853, rtol 1e-12) against the ODE (scipy DOP853, rtol 1e-13): both
    integrate to ~1e-11, so 1e-8 is the issue's bound with a margin."""
    model = Attention(beta=BETA, d=N_TOK, normalized=normalized)
    traj = simulate(model, equiangular(N_TOK, RHO0), TIMES[-1], times=TIMES,
                    method="dop853", rtol=1e-12, atol=1e-14, norm=norm)
    ref = solve_ivp(equiangular_ode, (0, TIMES[-1]), [RHO0, 1.0], method="DOP853",
                    t_eval=TIMES, rtol=1e-13, atol=1e-15, args=(norm, normalized))
    theta = traj.points
    gram = np.einsum("tid,tjd->tij", theta, theta)
    off = gram[:, ~np.eye(N_TOK, dtype=bool)]
    assert np.abs(off - ref.y[0][:, None]).max() <= 1e-8
    radii = np.ones((len(TIMES), N_TOK)) if traj.radii is None else traj.radii
    assert (traj.radii is None) == (norm in ("post", "ngpt"))
    assert np.abs(radii - ref.y[1][:, None]).max() <= 1e-8
    assert ref.y[0][-1] > ref.y[0][1]  # the tokens do cluster (a non-trivial check)


def test_equiangular_rates_post_and_pre():
    """From the closed ODEs (SA): 1 - rho ~ C e^{-2t} under post-LN, ~ C / t^2 under pre-LN
    (rho' -> 2 (1 - rho) / r with r ~ t). Local slopes of log(1 - rho) at late times."""
    post = solve_ivp(equiangular_ode, (0, 12), [RHO0, 1.0], method="DOP853", rtol=1e-13,
                     atol=1e-300, dense_output=True, args=("post", True))
    t = np.array([10.0, 12.0])
    gap = 1 - post.sol(t)[0]
    assert abs(np.diff(np.log(gap))[0] / 2.0 + 2.0) <= 1e-3
    pre = solve_ivp(equiangular_ode, (0, 1e5), [RHO0, 1.0], method="DOP853", rtol=1e-12,
                    atol=1e-300, dense_output=True, args=("pre", True))
    t = np.array([1e4, 1e5])
    gap = 1 - pre.sol(t)[0]
    assert abs(np.diff(np.log(gap))[0] / np.log(10.0) + 2.0) <= 2e-2


def test_post_is_the_unchanged_rk4_loop():
    """norm="post" (the default) is bitwise the RK4 loop of earlier versions: the same
    stages through attention_field, then the retraction."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model = Attention(beta=2.0, d=3, V=np.diag([1.0, 0.4, -0.2]))
    traj = simulate(model, x, 0.5, times=[0, 0.5], dt=0.1, norm="post")
    w = np.full(50, 1 / 50)
    h = 0.5 / 5
    for _ in range(5):
        def f(y):
            return attention_field(y, y, w, model, check=False)
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        x = _retract(x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4), model, h)
    assert np.array_equal(traj.points[-1], x)


def test_pre_with_causal_mask_and_layers():
    """The placements combine with a causal mask and the 'layers' scheme: token 0 under
    pre-LN sees itself only, x' = theta (V = I), so |x_0| = 1 + t exactly (Euler too)."""
    model = Attention(beta=1.0, d=3, causal=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    traj = simulate(model, x, 1.0, times=[0, 0.5, 1.0], dt=0.1, method="layers", norm="pre")
    assert np.allclose(traj.radii[:, 0], 1 + traj.times, atol=1e-13)
    assert np.allclose(traj.points[:, 0], x[0], atol=1e-13)
    with pytest.raises(ValueError, match="norm"):
        simulate(model, x, 1.0, norm="pre-LN")


def test_pre_resumes_bitwise_from_a_checkpoint(tmp_path, monkeypatch):
    """The saved state of "pre" is x in R^d (radii included), so a crash loses nothing and
    the resumed run is bitwise the uninterrupted one; the norm is part of the fingerprint."""
    import particles.integrate as integrate

    model = Attention(beta=1.0, d=3)
    x0 = equiangular(3, 0.1)
    times = np.linspace(0, 1.0, 5)
    ref = simulate(model, x0, 1.0, times=times, dt=0.05, norm="pre")
    real, count = integrate.attention_field, {"n": 0}

    def flaky(*args, **kwargs):
        count["n"] += 1
        if count["n"] > 30:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    path = tmp_path / "pre.npz"
    with monkeypatch.context() as m:
        m.setattr(integrate, "attention_field", flaky)
        with pytest.raises(KeyboardInterrupt):
            simulate(model, x0, 1.0, times=times, dt=0.05, norm="pre", checkpoint=path)
    again = simulate(model, x0, 1.0, times=times, dt=0.05, norm="pre", checkpoint=path)
    assert again.info["resumed_from_index"] > 0
    assert np.array_equal(again.points, ref.points) and np.array_equal(again.radii, ref.radii)
    with pytest.raises(ValueError, match="different run"):
        simulate(model, x0, 1.0, times=times, dt=0.05, norm="peri", checkpoint=path)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_output_matches_numpy(normalized, causal):
    """attention_field(tangent=False): V sum_j w_j k_ij x_j / Z_i without P_x^perp, against
    a numpy N x N reference (SA, USA, with and without the mask), and its tangent part is
    the field."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((90, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.uniform(0.5, 1.5, 90)
    w /= w.sum()
    model = Attention(beta=1.5, d=3, V=rng.standard_normal((3, 3)), K=np.diag([1, 2, 0.5]),
                      normalized=normalized, causal=causal)
    k = np.exp(model.beta * x @ model.A @ x.T) * w[None, :]
    if causal:
        k = np.tril(k)
    den = k.sum(axis=1) if normalized else (np.cumsum(w) if causal else np.ones(90))
    ref = (k @ x @ model.V.T) / den[:, None]
    got = attention_field(x, x, w, model, tangent=False)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    field = attention_field(x, x, w, model)
    tangent = got - np.einsum("ij,ij->i", x, got)[:, None] * x
    assert np.abs(tangent - field).max() <= 1e-12 * np.abs(ref).max()
