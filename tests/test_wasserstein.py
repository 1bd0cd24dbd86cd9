import numpy as np
import pytest

from continuum import Measure
from continuum.geometry import uniform_points
from continuum.wasserstein import wasserstein_sphere


def test_diracs_and_identity():
    x = np.array([[1.0, 0.0, 0.0]])
    angle = 0.7
    y = np.array([[np.cos(angle), np.sin(angle), 0.0]])
    mu, nu = Measure(x), Measure(y)
    assert np.isclose(wasserstein_sphere(mu, nu, p=2), angle, rtol=1e-12)
    assert np.isclose(wasserstein_sphere(mu, nu, p=1, cost="chordal"),
                      2 * np.sin(angle / 2), rtol=1e-12)
    pts = Measure(uniform_points(50, 3, np.random.default_rng(0)))
    assert wasserstein_sphere(pts, pts) <= 1e-12  # stable chord-based cost


def test_rotation_moves_every_atom_by_the_angle():
    # rotating a cloud about e_z by a small angle: W_2 <= the geodesic displacement
    pts = uniform_points(200, 3, np.random.default_rng(1))
    a = 0.05
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    w = wasserstein_sphere(Measure(pts), Measure(pts @ R.T))
    bound = np.sqrt(np.mean(np.arccos(np.clip(np.einsum("ij,ij->i", pts, pts @ R.T), -1, 1))**2))
    assert 0 < w <= bound * (1 + 1e-12)


def test_bad_input():
    a = Measure(np.array([[1.0, 0.0]]))
    b = Measure(np.array([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="dimensions"):
        wasserstein_sphere(a, b)
    with pytest.raises(ValueError, match="cost"):
        wasserstein_sphere(a, a, cost="euclid")


def test_circle_distances_match_exact_transport():
    from continuum.geometry import angles_to_circle
    from continuum.wasserstein import wasserstein_circle

    rng = np.random.default_rng(5)
    for _ in range(3):
        a = angles_to_circle(rng.uniform(0, 2 * np.pi, 40))
        b = angles_to_circle(rng.uniform(0, 1.0, 30))
        wa, wb = rng.random(40), rng.random(30)
        mu, nu = Measure(a, wa / wa.sum()), Measure(b, wb / wb.sum())
        for p in (1, 2):
            assert np.isclose(wasserstein_circle(mu, nu, p), wasserstein_sphere(mu, nu, p=p),
                              rtol=1e-6, atol=1e-12)
    # W_1 is exact (closed form): compare tightly
    assert np.isclose(wasserstein_circle(mu, nu, 1), wasserstein_sphere(mu, nu, p=1), rtol=1e-12)
    # a rotation of a Dirac by angle a: distance a (the shorter arc)
    d1 = Measure(angles_to_circle([0.1]))
    d2 = Measure(angles_to_circle([0.1 + 2.5]))
    assert np.isclose(wasserstein_circle(d1, d2, 1), 2.5, rtol=1e-12)
    assert np.isclose(wasserstein_circle(d1, d2, 2), 2.5, rtol=1e-6)


def _pair(n, seed):
    """Two measures on the same n nodes of S^2: one concentrated, one smooth (von Mises)."""
    rng = np.random.default_rng(seed)
    x = uniform_points(n, 3, rng)
    a = rng.random(n) ** 6
    b = np.exp(3 * x[:, 0])
    return Measure(x, a / a.sum()), Measure(x, b / b.sum())


@pytest.mark.parametrize("max_support", [30, 100, 300])
def test_reduced_wasserstein_error_is_within_its_certified_bound(max_support):
    """|W_p(mu', nu') - W_p(mu, nu)| <= W_p(mu, mu') + W_p(nu, nu') <= e_mu + e_nu (triangle
    inequality; e is the cost of the merge, a feasible plan). The bound is a theorem, so the
    only slack is the LP solver's round-off (1e-12)."""
    from continuum.wasserstein import reduce_pair, wasserstein_reduced

    for seed in range(3):
        mu, nu = _pair(600, seed)
        values, bounds = wasserstein_reduced(mu, nu, max_support)
        mu_r, nu_r, _, _ = reduce_pair(mu, nu, max_support)
        assert mu_r.size <= max_support and nu_r.size <= max_support
        for p in (1, 2):
            exact = wasserstein_sphere(mu, nu, p)
            assert 0 < bounds[p] and abs(values[p] - exact) <= bounds[p] + 1e-12


def test_reduced_wasserstein_is_exact_when_the_supports_fit():
    from continuum.wasserstein import wasserstein_reduced

    mu, nu = _pair(300, 4)
    # zero-weight atoms are dropped without losing mass: 300 atoms of positive weight remain
    pad = Measure(np.vstack([mu.points, uniform_points(200, 3, np.random.default_rng(5))]),
                  np.concatenate([mu.weights, np.zeros(200)]))
    values, bounds = wasserstein_reduced(pad, nu, 300)
    for p in (1, 2):
        assert bounds[p] == 0.0
        assert abs(values[p] - wasserstein_sphere(mu, nu, p)) <= 1e-12
    with pytest.raises(ValueError, match="max_support"):
        wasserstein_reduced(mu, nu, 0)
