import numpy as np
import pytest
from scipy import stats

from continuum import Measure
from continuum.circle.exact import sample_wrapped_cauchy, wrapped_cauchy_density
from particles import sample

# Kolmogorov-Smirnov critical value at level 1e-3: sqrt(-log(1e-3 / 2) / 2) = 1.949
KS_CRITICAL = 1.949


def test_uniform_on_any_sphere():
    for d in (2, 3, 7):
        x = sample(None, n=4000, d=d, seed=0)
        assert x.shape == (4000, d)
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-14)
        # each coordinate has variance 1/d: CLT bound on the mean
        assert np.abs(x.mean(axis=0)).max() < 5 / np.sqrt(4000 * d)


@pytest.mark.parametrize("r", [0.3, 0.9])
def test_rejection_sampling_wrapped_cauchy_on_circle(r):
    n = 5000
    x = sample(lambda p: wrapped_cauchy_density(p, r, 0.4), n=n, d=2, seed=1)
    theta = np.mod(np.arctan2(x[:, 1], x[:, 0]) - 0.4, 2 * np.pi)
    ks = stats.kstest(theta, stats.wrapcauchy(c=r).cdf).statistic
    assert np.sqrt(n) * ks < KS_CRITICAL


def test_moebius_sampler_matches_wrapped_cauchy_law():
    n = 5000
    x = sample_wrapped_cauchy(n, 0.6, 1.0, seed=2)
    theta = np.mod(np.arctan2(x[:, 1], x[:, 0]) - 1.0, 2 * np.pi)
    assert np.sqrt(n) * stats.kstest(theta, stats.wrapcauchy(c=0.6).cdf).statistic < KS_CRITICAL


def test_rejection_sampling_on_sphere():
    # rho = (1 + a z) / (4 pi): the law of z is linear on [-1, 1], E z = a / 3
    a, n = 0.9, 6000
    x = sample(lambda p: (1 + a * p[:, 2]) / (4 * np.pi), n=n, d=3, seed=3)
    cdf = lambda z: (z + 1) / 2 + a * (z**2 - 1) / 4  # noqa: E731
    assert np.sqrt(n) * stats.kstest(x[:, 2], cdf).statistic < KS_CRITICAL
    # longitude uniform
    phi = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
    assert np.sqrt(n) * stats.kstest(phi, stats.uniform(0, 2 * np.pi).cdf).statistic < KS_CRITICAL


def test_resampling_a_measure():
    mu = Measure(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.25, 0.75]))
    x = sample(mu, n=4000, d=2, seed=0)
    frac = np.mean(x[:, 1] == 1.0)
    assert abs(frac - 0.75) < 5 * np.sqrt(0.75 * 0.25 / 4000)


def test_bad_densities():
    with pytest.raises(ValueError, match="integrates to 2"):
        sample(lambda p: np.full(len(p), 2 / (2 * np.pi)), n=10, d=2)
    with pytest.raises(ValueError, match="negative"):
        sample(lambda p: p[:, 0], n=10, d=2)
    with pytest.raises(ValueError, match="non-finite"):
        sample(lambda p: np.full(len(p), np.nan), n=10, d=3)
    with pytest.raises(ValueError, match="shape"):
        sample(lambda p: np.ones((len(p), 2)), n=10, d=3)
    with pytest.raises(ValueError, match="n must"):
        sample(None, n=0, d=3)
    with pytest.raises(TypeError, match="rho0"):
        sample(3.0, n=10, d=3)
