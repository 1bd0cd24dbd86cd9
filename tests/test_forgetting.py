import math

import numpy as np
import pytest

from continuum import Attention, lora_update
from continuum.model import random_model
from forgetting.bounds import (
    deviation_time_lower_bound,
    dirac_angle,
    dirac_time_to_deviation,
    gronwall_bound,
    lipschitz_constants,
    spectral_gap,
)
from forgetting.runs import deviation, forgetting_run, time_to_deviation


def test_lipschitz_constants_follow_the_formulas():
    m = random_model(3)
    a = m.beta * np.linalg.norm(m.A, 2)
    v = np.linalg.norm(m.V, 2)
    c = lipschitz_constants(m)
    assert np.isclose(c["L"], v * (1 + a) + v * np.exp(2 * a) * (1 + 2 * a))
    u = lipschitz_constants(random_model(3, normalized=False))
    assert np.isclose(u["L_x"], u["L_mu"]) and np.isclose(u["forcing"], np.exp(u["a"]))
    assert lipschitz_constants(Attention(beta=0.0, d=3, V=2 * np.eye(3)))["L"] == 4.0


def test_gronwall_bound_and_deviation_time_are_consistent():
    m = random_model(3)
    L = lipschitz_constants(m)["L"]
    eps, delta = 0.1, 0.3
    t_low = deviation_time_lower_bound(m, eps, delta)
    assert np.isclose(gronwall_bound(m, eps, t_low), delta, rtol=1e-12)
    assert np.isclose(gronwall_bound(m, eps, 1e-8), eps * 1e-8, rtol=1e-6)  # slope eps at 0
    assert t_low == pytest.approx(math.log1p(L * delta / eps) / L)


def test_spectral_gap_and_dirac_formulas():
    gap, v1 = spectral_gap(np.diag([1.0, 0.8, 0.5]))
    assert np.isclose(gap, 0.2) and np.allclose(np.abs(v1), [1, 0, 0])
    theta0, g, eps = 0.2, 0.1, 0.3
    t = dirac_time_to_deviation(0.6, theta0, g, eps)
    assert np.isclose(dirac_angle(t, theta0, g, eps), 0.6)
    assert dirac_time_to_deviation(0.6, theta0, g, 0.05) == math.inf


def test_dirac_solution_matches_particle_run():
    """A Dirac stays a Dirac and follows tan theta(t) = tan theta0 e^{(eps - g) t}."""
    from particles import simulate

    g, eps, theta0 = 0.2, 0.5, 0.3
    model = Attention(beta=2.0, d=2, V=np.diag([1.0, 1.0 - g]) + eps * np.diag([0.0, 1.0]))
    x0 = np.array([[math.cos(theta0), math.sin(theta0)]] * 3)
    traj = simulate(model, x0, 3.0, times=[0.0, 1.5, 3.0], method="dop853", rtol=1e-12,
                    atol=1e-14)
    theta = np.arctan2(traj.points[:, 0, 1], traj.points[:, 0, 0])
    np.testing.assert_allclose(theta, dirac_angle(traj.times, theta0, g, eps), atol=1e-9)


def test_time_to_deviation_interpolates():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    D = np.array([0.0, 0.1, 0.3, 0.5])
    assert time_to_deviation(t, D, 0.2) == pytest.approx(1.5)
    assert time_to_deviation(t, D, 0.6) == math.inf
    with pytest.raises(ValueError, match="delta"):
        time_to_deviation(t, D, 0.0)


def test_linear_response_and_gronwall_on_particles():
    """D(t)/eps does not depend on eps for small eps (to 1%), and W_1 stays under the bound."""
    model = random_model(3, seed=1)
    times = np.linspace(0, 4, 9)
    curves = []
    for eps in (1e-3, 4e-3):
        tuned = model.perturbed(V=lora_update(3, rank=1, norm=eps, seed=2))
        run = forgetting_run(model, tuned, n=200, T=4.0, times=times)
        assert run.deviation_w2[0] == 0.0
        assert np.all(run.deviation_w1 <= run.gronwall)
        assert run.delta_norm == pytest.approx(eps)
        curves.append(run.deviation_w2[1:] / eps)
    assert np.max(np.abs(curves[1] / curves[0] - 1)) < 0.01


def test_forgetting_run_on_circle_solver_and_errors():
    model = Attention(beta=1.0, d=2, V=np.diag([1.0, 0.8]))
    tuned = model.perturbed(V=np.diag([0.0, 0.3]))
    rho0 = lambda p: (1 + 0.5 * p[:, 0] * p[:, 1]) / (2 * np.pi)  # noqa: E731
    run = forgetting_run(model, tuned, backend="fv", rho0=rho0, T=2.0, resolution=128,
                         times=np.linspace(0, 2, 5))
    assert run.deviation_w2[0] == 0.0 and run.deviation_w2[-1] > run.deviation_w2[1] > 0
    assert run.time_to_deviation(run.deviation_w2[-1] / 2) < 2.0
    with pytest.raises(ValueError, match="backend"):
        forgetting_run(model, tuned, backend="lattice")
    with pytest.raises(ValueError, match="rho0"):
        forgetting_run(model, tuned, backend="spectral")
    with pytest.raises(ValueError, match="d=3"):
        forgetting_run(model, Attention(beta=1.0, d=3))
    with pytest.raises(ValueError, match="saved times"):
        deviation(run.base, run.base.__class__(**{**run.base.__dict__,
                                                  "times": run.base.times + 1}))


def test_validation_norm_transition_eps_c_equals_gap():
    from validation import forgetting_norm_transition

    records = forgetting_norm_transition.main(quick=True)
    assert records and all(r.error_kind == "bracket" for r in records)
    assert all(r.passed for r in records), [(r.case, r.measured, r.expected) for r in records]


def test_continuum_threshold_band_contains_gap_and_shrinks_first_order():
    from validation import forgetting_continuum_threshold as case

    records = case.main(quick=True)
    assert all(r.passed for r in records), [(r.claim, r.measured, r.details) for r in records]
    # the classifier on either side of a wide margin: e1 wins well below g, e2 well above
    assert case.classify(2, 0.2, 0.0, 128) == -1 and case.classify(2, 0.2, 0.4, 128) == 1


def test_validation_depth_transition_and_bounds():
    from validation import forgetting_bounds, forgetting_depth_transition

    records = forgetting_depth_transition.main() + forgetting_bounds.main(quick=True)
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]


def test_paper_observables_cluster_then_bifurcate():
    from forgetting.observables import cluster_times, reference_clusters
    from validation import paper_observables

    record = paper_observables.main(quick=True)
    acc = [r for r in record.details if r["method"] == "accurate"]
    assert all(np.isfinite(r["time_cluster"]) and r["time_bifurcation"] > r["time_cluster"]
               for r in acc)
    # time bifurcation roughly halves when eps doubles
    assert 1.6 < acc[0]["time_bifurcation"] / acc[1]["time_bifurcation"] < 2.4
    # the helpers on a hand-made path: a token at the centre, then leaving it
    centres = reference_clusters(np.array([[1.0, 0, 0], [1.0, 0, 0]]), 0.1)
    assert centres.shape == (1, 3)
    path = np.array([[[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]], [[np.cos(0.2), np.sin(0.2), 0.0]]])
    assert cluster_times(np.array([0.0, 1.0, 2.0]), path, centres, 0.1) == (1.0, 2.0)
