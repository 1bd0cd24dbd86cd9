import numpy as np
import pytest

from continuum import Attention, Measure
from continuum.geometry import uniform_points
from continuum.model import random_model
from particles import simulate
from validation import energy_usa, kuramoto, rk4_order


def test_rk4_observed_order_is_four():
    record = rk4_order.main()
    assert abs(record.measured - 4.0) <= 0.3, record.details
    for row in record.details:  # tokens stay on the sphere
        assert row["max_radius_error"] <= 1e-12


def test_all_methods_keep_tokens_on_sphere_and_agree():
    model = random_model(4, beta=2.0, normalized=False, seed=5)
    x0 = uniform_points(40, 4, np.random.default_rng(0))
    times = np.linspace(0, 1.0, 5)
    # dt L_est <= 2.785 (RK4's stability interval) with USA's scale: L_est = 362 here
    rk4 = simulate(model, x0, 1.0, times=times, dt=0.005)
    dop = simulate(model, x0, 1.0, times=times, method="dop853", rtol=1e-12, atol=1e-13)
    for traj in (rk4, dop):
        assert traj.points.shape == (5, 40, 4)
        np.testing.assert_allclose(np.linalg.norm(traj.points, axis=2), 1.0, atol=1e-12)
        np.testing.assert_allclose(traj.points[0], x0, rtol=0, atol=1e-15)
    # RK4 error at dt = 0.005 is O(dt^4) ~ 1e-9 (times the field's scale)
    assert np.abs(rk4.points - dop.points).max() < 1e-6
    assert dop.info["radius_drift"] < 1e-8


def test_layers_mode_is_euler_first_order():
    model = Attention(beta=1.0, d=3)
    x0 = uniform_points(30, 3, np.random.default_rng(2))
    ref = simulate(model, x0, 1.0, times=[1.0], method="dop853", rtol=1e-12, atol=1e-13)
    errs = [np.abs(simulate(model, x0, 1.0, times=[1.0], dt=h, method="layers").points[-1]
                   - ref.points[-1]).max() for h in (0.1, 0.05, 0.025)]
    slope = np.polyfit(np.log([0.1, 0.05, 0.025]), np.log(errs), 1)[0]
    assert abs(slope - 1.0) < 0.2
    with pytest.raises(ValueError, match="multiple of dt"):
        simulate(model, x0, 1.0, times=[0.55], dt=0.1, method="layers")


def test_weighted_measure_and_trajectory_interface():
    rng = np.random.default_rng(3)
    x0 = uniform_points(20, 3, rng)
    w = rng.random(20)
    w /= w.sum()
    traj = simulate(Attention(beta=1.0, d=3), Measure(x0, w), 0.5, times=[0.0, 0.25, 0.5])
    mu = traj.measure(2)
    assert isinstance(mu, Measure)
    np.testing.assert_array_equal(mu.weights, w)
    assert len(traj) == 3 and traj.info["method"] == "rk4"


def test_uniform_lattice_is_stationary():
    n = 64
    theta = 2 * np.pi * np.arange(n) / n
    x0 = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    traj = simulate(Attention(beta=3.0, d=2), x0, 2.0, times=[2.0])
    assert np.abs(traj.points[-1] - x0).max() < 1e-13


@pytest.mark.parametrize("kwargs, word", [
    (dict(T=-1.0), "T"),
    (dict(T=1.0, dt=0.0), "dt"),
    (dict(T=1.0, dt=np.nan), "dt"),
    (dict(T=1.0, dt=5.0), "dt"),  # outside RK4's stability interval
    (dict(T=1.0, times=[0.5, 0.2]), "times"),
    (dict(T=1.0, times=[0.5, 2.0]), "times"),
    (dict(T=1.0, method="euler"), "method"),
])
def test_bad_arguments(kwargs, word):
    x0 = uniform_points(5, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match=word):
        simulate(Attention(beta=1.0, d=3), x0, **kwargs)


def test_bad_initial_tokens():
    model = Attention(beta=1.0, d=3)
    with pytest.raises(ValueError, match="d=2"):
        simulate(model, uniform_points(5, 2, np.random.default_rng(0)), 1.0)
    with pytest.raises(ValueError, match="unit sphere"):
        simulate(model, 2 * uniform_points(5, 3, np.random.default_rng(0)), 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        simulate(model, np.full((5, 3), np.nan), 1.0)


def test_kuramoto_exact_order_parameter():
    record = kuramoto.main(n=2000, seeds=(0,), T=4.0)
    assert record.passed, record.details
    assert record.tolerance == pytest.approx(5 / np.sqrt(2000))


def test_usa_energy_never_decreases_and_obeys_identity():
    record = energy_usa.main(quick=True)
    assert record.details[0]["monotone"], record.details
    assert record.passed, record.details
