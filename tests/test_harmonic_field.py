"""Spherical-harmonic field on S^2 (continuum.sphere.harmonic) against the direct kernel."""

import math

import numpy as np
import pytest
import scipy.special

from continuum import Attention, solve
from continuum.kernels import attention_field
from continuum.sphere.harmonic import HarmonicField, harmonic_degree, sphere_harmonics, zonal_factor
from continuum.sphere.solver import choose_sphere_path

U = np.finfo(float).eps


def _sphere_points(rng, n, centre=None, spread=None):
    p = rng.normal(size=(n, 3))
    if centre is not None:  # concentrated cloud: centre + spread * noise
        p = np.asarray(centre) + spread * p
    return p / np.linalg.norm(p, axis=1)[:, None]


def test_addition_theorem():
    """sum_m Y_lm(x) Y_lm(y) = (2l + 1) / (4 pi) P_l(<x, y>): orthonormal real harmonics."""
    rng = np.random.default_rng(1)
    x, y = _sphere_points(rng, 40), _sphere_points(rng, 40)
    L = 24
    Yx, Yy = sphere_harmonics(x, L), sphere_harmonics(y, L)
    t = np.einsum("ij,ij->i", x, y)
    for l in range(L + 1):
        block = slice(l * l, (l + 1) ** 2)
        lhs = (Yx[:, block] * Yy[:, block]).sum(axis=1)
        rhs = (2 * l + 1) / (4 * math.pi) * scipy.special.eval_legendre(l, t)
        # round-off of a sum of 2l + 1 products of O(sqrt((2l + 1) / 4 pi)) numbers
        assert np.max(np.abs(lhs - rhs)) <= 100 * (2 * l + 1) ** 2 * U


def test_poles_are_regular():
    Y = sphere_harmonics(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]), 10)
    assert np.all(np.isfinite(Y))
    # only m = 0 survives at the poles: Y_l0(+-e3) = +-^l sqrt((2l + 1) / 4 pi)
    for l in range(11):
        assert Y[0, l * l + l] == pytest.approx(math.sqrt((2 * l + 1) / (4 * math.pi)))
        assert Y[1, l * l + l] == pytest.approx((-1) ** l * math.sqrt((2 * l + 1) / (4 * math.pi)))


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0, 9.0])
@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("concentrated", [False, True])
def test_harmonic_field_matches_kernel(beta, normalized, concentrated):
    rng = np.random.default_rng(int(beta * 10) + 2 * normalized + concentrated)
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # A = Q^T K = 0.7 R (R orthogonal)
    model = Attention(beta=beta, d=3, Q=0.7 * np.eye(3), K=R, V=rng.normal(size=(3, 3)),
                      normalized=normalized)
    targets = _sphere_points(rng, 500)
    sources = (_sphere_points(rng, 800, centre=[1.0, 0, 0], spread=0.05) if concentrated
               else _sphere_points(rng, 800))
    weights = rng.random(800)
    weights /= weights.sum()
    hf = HarmonicField(targets, sources, model)
    exact = attention_field(targets, sources, weights, model)
    kappa = hf.kappa
    assert kappa == pytest.approx(0.7 * beta)
    # module docstring: tail <= 1e-16 e^{-kappa}; round-off ~ (L + 1)^2 u e^{2 kappa}
    bound = 10 * (hf.L + 1) ** 2 * U * math.exp(2 * kappa)
    err = np.max(np.abs(hf(weights) - exact)) / np.max(np.abs(exact))
    assert err <= bound, (err, bound)


def test_degree_and_zonal_detection():
    assert harmonic_degree(0.0) == 0
    assert harmonic_degree(1.0) < harmonic_degree(4.0) < harmonic_degree(9.0)
    assert zonal_factor(2.0 * np.eye(3))[0] == pytest.approx(2.0)
    assert zonal_factor(np.diag([1.0, 1.0, 0.5])) is None
    with pytest.raises(ValueError, match="kappa"):
        harmonic_degree(-1.0)


def test_path_choice_and_errors():
    zonal = Attention(beta=1.0, d=3)
    skew = Attention(beta=1.0, d=3, Q=np.diag([1.0, 2.0, 3.0]))
    hot = Attention(beta=20.0, d=3)
    assert choose_sphere_path(zonal, "auto", 1000) == "harmonic"
    assert choose_sphere_path(skew, "auto", 1000) == "kernel"
    assert choose_sphere_path(hot, "auto", 1000) == "kernel"  # beta c > 9: dynamic range
    assert choose_sphere_path(zonal, "auto", 10**9) == "kernel"  # tables would not fit
    with pytest.raises(ValueError, match="zonal"):
        choose_sphere_path(skew, "harmonic")
    with pytest.raises(ValueError, match="field"):
        choose_sphere_path(zonal, "fft")
    with pytest.raises(ValueError, match="d = 3"):
        HarmonicField(np.ones((2, 2)), np.ones((2, 2)), Attention(beta=1.0, d=2))
    hf = HarmonicField(np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]), zonal)
    with pytest.raises(ValueError, match="weights"):
        hf(np.ones(3))


def test_fem_solution_same_with_either_field_path():
    """The DG solution does not depend on how the (identical to round-off) field is computed:
    the scheme is stable, so round-off differences stay at round-off level."""
    model = Attention(beta=1.0, d=3, V=np.diag([1.0, 0.9, 0.7]))
    rho0 = lambda p: np.exp(3.0 * (p[:, 0] - 1.0)) / (2 * math.pi * (1 - math.exp(-6.0)) / 3.0)
    runs = {f: solve(model, rho0, 1.0, method="fem", resolution=2, times=[0.0, 1.0], field=f)
            for f in ("kernel", "harmonic")}
    assert runs["harmonic"].info["field"] == "harmonic"
    a, b = runs["kernel"].densities[-1], runs["harmonic"].densities[-1]
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(a))
