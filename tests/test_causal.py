"""Causal masks (issue 24): the compiled causal sum against a numpy reference with an explicit
mask, the model flag, the dispatch, and the exact first-token (Dirac) solution."""

import numpy as np
import pytest

from continuum import Attention
from continuum.kernels import attention_field
from continuum.model import random_model
from particles import simulate
from particles.sampling import sample_positional, token_positions


def masked_reference(x, w, model):
    """numpy N x N reference: token i attends to j <= i; SA normalised over j <= i, USA divided
    by sum_{j <= i} w_j; then P_x^perp."""
    s = model.beta * x @ model.A @ x.T
    mask = np.tril(np.ones_like(s, dtype=bool))
    s = np.where(mask, s, -np.inf)
    top = s.max(axis=1, keepdims=True) if model.normalized else 0.0
    k = np.where(mask, np.exp(s - top), 0.0) * w[None, :]
    num = k @ x @ model.V.T
    den = k.sum(axis=1) if model.normalized else np.cumsum(w)
    u = num / den[:, None]
    return u - np.einsum("ij,ij->i", x, u)[:, None] * x


def cloud(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.uniform(0.5, 1.5, n)
    return x, w / w.sum()


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("d,n", [(2, 700), (3, 333), (16, 300)])  # d = 16: the BLAS kernel
def test_causal_sum_matches_masked_reference(d, n, normalized):
    x, w = cloud(n, d, seed=d)
    model = random_model(d, beta=2.0, normalized=normalized, seed=1)
    causal = Attention(beta=2.0, d=d, Q=model.Q, K=model.K, V=model.V,
                       normalized=normalized, causal=True)
    got = attention_field(x, x, w, causal)
    ref = masked_reference(x, w, causal)
    # both sum at most n terms of size ||V|| e^{2 beta ||A||} in float64
    assert np.max(np.abs(got - ref)) <= 1e-12 * max(1.0, np.abs(ref).max())
    # the last token sees the whole cloud: the unmasked field there
    full = attention_field(x[-1:], x, w, model)
    assert np.max(np.abs(got[-1] - full[0])) <= 1e-12 * max(1.0, np.abs(full).max())


def test_causal_sum_survives_extreme_scores():
    """Scores of 1000: the bound shift underflows, the exact-maximum pass takes over."""
    x, w = cloud(200, 3, seed=5)
    model = Attention(beta=1000.0, d=3, causal=True)
    got = attention_field(x, x, w, model)
    assert np.all(np.isfinite(got))
    assert np.max(np.abs(got - masked_reference(x, w, model))) <= 1e-10


def test_causal_flag_and_dispatch():
    model = Attention(beta=1.0, d=3, causal=True)
    assert model.perturbed(V=0.1 * np.eye(3)).causal
    assert not model.unmasked().causal
    assert "causal" in repr(model) and model.to_dict()["causal"] is True
    assert "causal" not in Attention(beta=1.0, d=3).to_dict()  # fingerprints unchanged
    with pytest.raises(TypeError, match="causal"):
        Attention(beta=1.0, d=3, causal=1)
    x, w = cloud(10, 3, seed=0)
    with pytest.raises(ValueError, match="harmonic"):
        attention_field(x, x, w, model, method="harmonic")
    with pytest.raises(ValueError, match="targets are its sources"):
        attention_field(x[:4], x, w, model)
    # "auto" on a cloud large enough for the harmonic path falls back to the masked sum
    xb, wb = cloud(2100, 3, seed=1)
    got = attention_field(xb, xb, wb, model, method="auto")
    assert np.max(np.abs(got - masked_reference(xb, wb, model))) <= 1e-12


@pytest.mark.parametrize("normalized", [True, False])
def test_first_token_follows_the_dirac_solution(normalized):
    """Token 0 sees itself only: x' = e^{beta<x, Ax>} P^perp V x (USA, prefix-normalised) or
    P^perp V x (SA). With Q = K = I, <x, Ax> = 1 on the sphere, so
    x(t) = e^{c t V} x0 / |.| with c = 1 (SA) or e^beta (USA, 1/i). A 1/n normalisation would
    give c = e^beta / n instead: the test tells the two apart."""
    from scipy.linalg import expm

    rng = np.random.default_rng(3)
    V = np.diag([1.0, 0.5, -0.3]) + 0.2 * rng.standard_normal((3, 3))
    model = Attention(beta=0.7, d=3, V=V, normalized=normalized, causal=True)
    x0, _ = cloud(40, 3, seed=4)
    T = 2.0
    traj = simulate(model, x0, T, times=[0, 1, 2], method="dop853", rtol=1e-12, atol=1e-14)
    c = 1.0 if normalized else np.exp(0.7)
    for i, t in enumerate(traj.times):
        exact = expm(c * t * V) @ x0[0]
        exact /= np.linalg.norm(exact)
        assert np.max(np.abs(traj.points[i, 0] - exact)) <= 1e-9  # DOP853 at rtol 1e-12


def test_causal_simulate_matches_masked_reference_steps():
    """One RK4 run with the compiled causal field against RK4 on the numpy masked field."""
    model = Attention(beta=1.5, d=2, V=np.array([[1.0, 0.3], [0.0, 0.6]]), causal=True)
    x0, _ = cloud(64, 2, seed=7)
    w = np.full(64, 1 / 64)
    traj = simulate(model, x0, 1.0, times=[0, 1.0], dt=0.05)
    x = x0.copy()
    h = 0.05
    for _ in range(20):
        k1 = masked_reference(x, w, model)
        k2 = masked_reference(x + 0.5 * h * k1, w, model)
        k3 = masked_reference(x + 0.5 * h * k2, w, model)
        k4 = masked_reference(x + h * k3, w, model)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert np.max(np.abs(traj.points[-1] - x)) <= 1e-12


def test_sample_positional_draws_each_token_from_its_slice():
    """rho0(x, s) = von Mises-like with a mean angle 2 pi s * 0.5: the mean direction of
    tokens in a window of positions matches the slice's mean within 4 standard errors."""
    def rho0(p, s):
        theta = np.arctan2(p[:, 1], p[:, 0])
        return (1 + 0.8 * np.cos(theta - np.pi * s)) / (2 * np.pi)

    n = 20000
    x = sample_positional(rho0, n=n, d=2, seed=0)
    s = token_positions(n)
    assert x.shape == (n, 2) and np.allclose(np.linalg.norm(x, axis=1), 1)
    for lo in (0.0, 0.5):
        sel = (s >= lo) & (s < lo + 0.1)
        z = x[sel, 0] + 1j * x[sel, 1]
        # E e^{i theta} = 0.4 e^{i pi s}; averaged over the window
        expected = 0.4 * np.mean(np.exp(1j * np.pi * s[sel]))
        assert abs(z.mean() - expected) <= 4 * np.sqrt(0.5 / sel.sum())
    with pytest.raises(TypeError, match="rho0"):
        sample_positional("uniform", n=10)


def test_study_keys_for_mask_and_norm():
    """[model] causal and norm: checked before any run (errors name the key), particles only,
    dropped at their defaults (old studies keep their run points)."""
    import copy

    from forgetting.config import DEFAULT_STUDY, ConfigError, base_model, validate_config

    raw = copy.deepcopy(DEFAULT_STUDY)
    cfg = validate_config(copy.deepcopy(raw))
    assert "causal" not in cfg["model"] and "norm" not in cfg["model"]
    raw["backend"] = {"kinds": ["particles"], "n": 50}
    raw["model"].update(causal=True, norm="pre")
    cfg = validate_config(copy.deepcopy(raw))
    assert base_model(cfg, 0.1).causal and cfg["model"]["norm"] == "pre"
    for key, bad, word in (("causal", 1, "model.causal"), ("norm", "layer", "model.norm")):
        broken = copy.deepcopy(raw)
        broken["model"][key] = bad
        with pytest.raises(ConfigError, match=word):
            validate_config(broken)
    mixed = copy.deepcopy(raw)
    mixed["backend"]["kinds"] = ["particles", "fv"]
    with pytest.raises(ConfigError, match="particles' only"):
        validate_config(mixed)


@pytest.mark.slow
def test_family_threshold_case_runs():
    """validation/forgetting_family_threshold.py with one seed on S^1: every variant's bracket
    holds g (the prediction eps_c = g; docs/design.md reports the full run)."""
    from validation import forgetting_family_threshold as case

    records = case.main(dims=(2,), seeds=(0,), steps=6)
    assert len(records) == 5 and all(r.passed for r in records), [r.measured for r in records]


def uniform_circle(p, s):
    return np.full(len(p), 1 / (2 * np.pi))


@pytest.mark.parametrize("call, kind, word", [
    (lambda: sample_positional(uniform_circle, n="3", d=2), TypeError, "n"),
    (lambda: sample_positional(uniform_circle, n=3, d=1), ValueError, "d"),
    (lambda: token_positions(0), ValueError, "n"),
    (lambda: attention_field(cloud(5, 3, 0)[0], cloud(5, 3, 0)[0], cloud(5, 3, 0)[1],
                             Attention(d=3, causal=True), tangent="no"), TypeError, "tangent"),
    (lambda: simulate(Attention(d=3), cloud(5, 3, 0)[0], 1.0, norm=1), ValueError, "norm"),
    (lambda: simulate(Attention(d=3, causal=True), cloud(5, 3, 0)[0], 1.0, field="harmonic"),
     ValueError, "field"),
    (lambda: simulate(Attention(d=3), cloud(5, 3, 0)[0], 1.0, field="harmonic", norm="pre"),
     ValueError, "field"),
    (lambda: __import__("continuum").solve(Attention(d=2, causal=True), uniform_circle, 1.0,
                                           "spectral", 16, slices="5"), TypeError, "slices"),
    (lambda: __import__("continuum").solve(Attention(d=2, causal=True), "uniform", 1.0,
                                           "spectral", 16), TypeError, "rho0"),
])
def test_bad_input_names_the_parameter(call, kind, word):
    with pytest.raises(kind, match=word):
        call()
