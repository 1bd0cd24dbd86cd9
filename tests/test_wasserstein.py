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
