import numpy as np
import pytest

from continuum import Attention, Measure
from continuum.geometry import gauss_sphere_grid, uniform_points


def test_default_weights_and_observables():
    x = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    mu = Measure(x)
    np.testing.assert_array_equal(mu.weights, [0.5, 0.5])
    np.testing.assert_allclose(mu.mean(), 0.0, atol=1e-16)
    assert mu.order_parameter() == 0.0
    np.testing.assert_allclose(mu.second_moment(), np.diag([1.0, 0.0, 0.0]))
    assert mu.d == 3 and mu.size == len(mu) == 2


def test_second_moment_of_uniform_grid_is_identity_over_d():
    pts, w = gauss_sphere_grid(8)  # exact for degree < 16
    mu = Measure(pts, w)
    np.testing.assert_allclose(mu.second_moment(), np.eye(3) / 3, atol=1e-14)
    np.testing.assert_allclose(mu.mean(), 0.0, atol=1e-15)


def test_interaction_energy_matches_double_sum():
    rng = np.random.default_rng(0)
    x = uniform_points(50, 3, rng)
    w = rng.random(50)
    w /= w.sum()
    mu = Measure(x, w)
    A = rng.standard_normal((3, 3))
    for beta in (0.5, 3.0):
        model = Attention(beta=beta, d=3, K=A, normalized=False)
        ref = 0.5 / beta * w @ (np.exp(beta * x @ A @ x.T) - 1) @ w
        assert np.isclose(mu.interaction_energy(model), ref, rtol=1e-13)
    model0 = Attention(beta=0.0, d=3, K=A)
    m = mu.mean()
    assert np.isclose(mu.interaction_energy(model0), 0.5 * m @ A @ m, rtol=1e-13)


@pytest.mark.parametrize("points, weights, word", [
    (np.array([[1.0, 0.0], [0.0, 1.1]]), None, "unit sphere"),
    (np.array([[1.0, 0.0], [np.nan, 1.0]]), None, "non-finite"),
    (np.array([1.0, 0.0]), None, "shape"),
    (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.7, 0.7]), "sum to 1"),
    (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.5, -0.5]), "non-negative"),
    (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0]), "shape"),
    (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([np.nan, 1.0]), "non-finite"),
])
def test_bad_measures_raise(points, weights, word):
    with pytest.raises(ValueError, match=word):
        Measure(points, weights)


@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("kappa", [0.0, 1.0, 20.0, 800.0])
def test_von_mises_density_is_normalised(d, kappa):
    """int rho dsigma = 1, by quadratures exact to round-off for these smooth densities
    (trapezoid on S^1, Gauss x equispaced on S^2; S^4: the closed form in 1-d, see below)."""
    from continuum.geometry import circle_grid, gauss_sphere_grid, sphere_area, von_mises_density

    mean = np.zeros(d)
    mean[0] = 1.0
    if d == 2:
        pts, w = circle_grid(4096)
    elif d == 3:
        pts, w = gauss_sphere_grid(600)
    else:  # the density depends on t = x_1 only: int = |S^{d-2}| int (1-t^2)^{(d-3)/2} rho dt
        t, wt = np.polynomial.legendre.leggauss(2000)
        pts = np.zeros((t.size, d))
        pts[:, 0], pts[:, 1] = t, np.sqrt(1 - t**2)
        vals = von_mises_density(pts, mean, kappa)
        total = sphere_area(d - 1) * np.sum(wt * (1 - t**2) ** ((d - 3) / 2) * vals)
        assert abs(total - 1) < 1e-10
        return
    total = sphere_area(d) * (w @ von_mises_density(pts, mean, kappa))
    assert abs(total - 1) < 1e-10


def test_von_mises_density_closed_forms():
    from continuum.geometry import von_mises_density

    p2 = np.array([[np.cos(0.3), np.sin(0.3)]])
    p3 = np.array([[0.6, 0.0, 0.8]])
    k = 2.5
    assert np.isclose(von_mises_density(p2, [1, 0], k)[0],
                      np.exp(k * np.cos(0.3)) / (2 * np.pi * np.i0(k)), rtol=1e-14)
    assert np.isclose(von_mises_density(p3, [1, 0, 0], k)[0],
                      k * np.exp(k * 0.6) / (4 * np.pi * np.sinh(k)), rtol=1e-14)
    with pytest.raises(ValueError, match="kappa"):
        von_mises_density(p3, [1, 0, 0], -1.0)
    with pytest.raises(ValueError, match="mean"):
        von_mises_density(p3, [0, 0, 0], 1.0)
