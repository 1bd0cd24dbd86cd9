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
