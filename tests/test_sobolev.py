"""Negative Sobolev distances (continuum.sobolev): exact identities and the i.i.d. sampling
expectation (the MMD identity)."""

import math

import numpy as np
import pytest
from scipy.special import eval_legendre

from continuum import Measure
from continuum.geometry import circle_grid, gauss_sphere_grid, uniform_points, von_mises_density
from continuum.sobolev import (kernel_diagonal, sampling_expectation, sobolev_distance,
                               truncation_bound)


def kernel(x, y, d, s, L):
    """k_L(x, y) summed directly from its definition."""
    t = np.clip(x @ y.T, -1, 1)
    if d == 2:
        k = np.arange(-L, L + 1)
        ang = np.arccos(t)  # cos(k angle) is even in the angle: the sign does not matter
        return sum((1 + kk**2) ** (-s) * np.cos(kk * ang) for kk in k) / (2 * math.pi)
    return sum((1 + l * (l + 1)) ** (-s) * (2 * l + 1) / (4 * math.pi) * eval_legendre(l, t)
               for l in range(L + 1))


@pytest.mark.parametrize("d", [2, 3])
def test_distance_equals_the_mmd_of_its_kernel(d):
    """||mu - nu||^2 = <mu - nu, k_L (mu - nu)> for two small weighted clouds."""
    rng = np.random.default_rng(d)
    s, L = 1.5, 12
    x, y = uniform_points(40, d, rng), uniform_points(30, d, rng)
    a, b = rng.random(40), rng.random(30)
    a, b = a / a.sum(), b / b.sum()
    mmd = a @ kernel(x, x, d, s, L) @ a - 2 * a @ kernel(x, y, d, s, L) @ b \
        + b @ kernel(y, y, d, s, L) @ b
    got = sobolev_distance(Measure(x, a), Measure(y, b), s=s, L=L) ** 2
    assert abs(got - mmd) <= 1e-12 * kernel_diagonal(d, s, L)
    assert np.isclose(kernel(x[:1], x[:1], d, s, L)[0, 0], kernel_diagonal(d, s, L), rtol=1e-13)


@pytest.mark.parametrize("d", [2, 3])
def test_iid_sampling_expectation(d):
    """Mean of ||mu_n - mu||^2 over R independent samples = (k(x,x) - ||mu||^2)/n, within
    4 standard errors of the mean (mu: a von Mises density on a quadrature grid)."""
    rng = np.random.default_rng(10 + d)
    pts, w = circle_grid(2048) if d == 2 else gauss_sphere_grid(64)
    mean = np.zeros(d)
    mean[0] = 1.0
    dens = von_mises_density(pts, mean, 2.0) * w
    mu = Measure(pts, dens / dens.sum())
    n, R = 500, 400
    samples = [sobolev_distance(Measure(pts[rng.choice(len(pts), n, p=mu.weights)]), mu) ** 2
               for _ in range(R)]
    expected = sampling_expectation(mu, n)
    sem = np.std(samples, ddof=1) / math.sqrt(R)
    assert abs(np.mean(samples) - expected) <= 4 * sem, (np.mean(samples), expected, sem)


def test_distance_properties_and_errors():
    rng = np.random.default_rng(0)
    x = uniform_points(100, 3, rng)
    mu, nu = Measure(x), Measure(x[::-1])
    assert sobolev_distance(mu, nu) < 1e-12  # the same measure, other order
    assert sobolev_distance(mu, Measure(x[:50])) > 0
    with pytest.raises(ValueError, match="L must"):
        sobolev_distance(mu, nu, L=0)
    with pytest.raises(ValueError, match="s must"):
        sobolev_distance(mu, nu, s=-1.0)
    with pytest.raises(ValueError, match="d=4"):
        sobolev_distance(Measure(uniform_points(5, 4, rng)), Measure(uniform_points(5, 4, rng)))


@pytest.mark.parametrize("d", [2, 3])
def test_truncation_bound_holds_for_two_diracs(d):
    """Two Diracs (the worst case): ||.||^2 at a high degree minus at L is below the bound."""
    e1, e2 = np.eye(d)[:1], np.eye(d)[1:2]
    a, b = Measure(e1), Measure(e2)
    L, s = 16, 2.0
    high = sobolev_distance(a, b, s=s, L=512) ** 2
    low = sobolev_distance(a, b, s=s, L=L) ** 2
    assert 0 <= high - low <= truncation_bound(d, s, L)


def test_validation_case_particles_converge_at_half_order_quick():
    """Quick mode of validation/sphere_particles_sobolev: N = 10^2 ... 10^4, beta = 1."""
    from validation import sphere_particles_sobolev

    records = sphere_particles_sobolev.main(quick=True)
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]
