"""The model family (continuum.family): several heads (MultiHead) and weights that change with
depth (Layers), through the field, the particles and every continuum solver.

Exact checks: a MultiHead field is the weighted sum of its heads' fields (direct and fast
paths, S^1 and S^2); at beta = 0 several heads are one head with V = sum_h w_h V_h, and the
Poisson-kernel family is exact across layer switches; the growth rates of the uniform state
for zonal heads add (continuum.linear.heads_growth_rate); identical layers are the
time-independent model bit for bit; a Dirac moves as prod_k e^{tau V_k} x0 / |.| across layer
switches, with RK4's order 4 intact (a step across a switch would make it first order).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg

from continuum import Attention, Layers, MultiHead, solve
from continuum.family import Schedule, heads_of, model_at, switch_times
from continuum.kernels import attention_field, interaction_energy
from continuum.linear import heads_growth_rate, uniform_growth_rate
from continuum.model import lora_update, random_model
from continuum.timestep import field_scale
from particles import sample, simulate

U = np.finfo(float).eps / 2  # unit round-off


def unit_cloud(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rotation(d, angle):
    if d == 2:
        return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------ construction, checks
def test_multihead_is_validated_and_immutable():
    a, b = Attention(beta=1.0, d=3), Attention(beta=2.0, d=3, normalized=False)
    with pytest.raises(TypeError, match="heads"):
        MultiHead(a)
    with pytest.raises(ValueError, match="heads"):
        MultiHead([])
    with pytest.raises(TypeError, match=r"heads\[1\]"):
        MultiHead([a, "b"])
    with pytest.raises(ValueError, match=r"heads\[1\] has d=2"):
        MultiHead([a, Attention(d=2)])
    with pytest.raises(ValueError, match="combine"):
        MultiHead([a, b], combine="max")
    model = MultiHead([a, b], combine="mean")
    assert model.d == 3 and model.weights == (0.5, 0.5) and len(model) == 2
    with pytest.raises(AttributeError):
        model.combine = "sum"
    delta = lora_update(3, rank=1, norm=0.3, seed=1)
    tuned = model.perturbed(head=1, V=delta)
    assert tuned.heads[0] is a and np.array_equal(tuned.heads[1].V, b.V + delta)
    assert tuned.combine == "mean"
    with pytest.raises(ValueError, match="head"):
        model.perturbed(head=2, V=delta)
    with pytest.raises(TypeError, match="heads"):
        MultiHead([Layers([a])])


def test_layers_are_validated_and_answer_the_model_in_force():
    a, b, c = (Attention(beta=x, d=2) for x in (0.5, 1.0, 2.0))
    with pytest.raises(ValueError, match="layer_time"):
        Layers([a, b], layer_time=0.0)
    with pytest.raises(TypeError, match=r"models\[0\]"):
        Layers([Layers([a]), b])
    with pytest.raises(ValueError, match=r"models\[1\] has d=3"):
        Layers([a, Attention(d=3)])
    depth = Layers([a, b, c], layer_time=0.1)
    # the switches are k tau exactly; at a switch the new layer is in force
    for t, (m, nxt) in ((0.0, (a, 0.1)), (0.1, (b, 0.2)), (np.nextafter(0.2, 0.0), (b, 0.2)),
                        (0.2, (c, math.inf)), (0.3, (c, math.inf)), (50.0, (c, math.inf))):
        got = depth.at(t)
        assert got[0] is m and got[1] == nxt, t
    assert list(switch_times(depth, 1.0)) == [0.1, 0.2]
    assert list(switch_times(depth, 0.2)) == [0.1]
    assert model_at(a, 7.0) == (a, math.inf) and switch_times(a, 5.0).size == 0
    with pytest.raises(TypeError, match="Layers"):
        heads_of(depth)
    with pytest.raises(TypeError, match="model"):
        attention_field(unit_cloud(4, 2), unit_cloud(4, 2), np.full(4, 0.25), depth)


def test_layers_random_draws_fresh_weights_and_adapters():
    depth = Layers.random(3, 4, seed=5, beta=2.0)
    again = Layers.random(3, 4, seed=5, beta=2.0)
    assert len(depth) == 4 and depth.layer_time == 1.0
    for m, m2 in zip(depth.models, again.models):  # seeded: the same draws
        assert np.array_equal(m.Q, m2.Q) and np.array_equal(m.V, m2.V) and m.beta == 2.0
    assert not np.array_equal(depth.models[0].V, depth.models[1].V)  # fresh per layer
    base = random_model(3, seed=9)
    adapted = Layers.random(3, 6, seed=1, base=base, lora_rank=1, lora_norm=0.2)
    for m in adapted.models:
        delta = m.V - base.V
        assert np.array_equal(m.Q, base.Q) and np.array_equal(m.K, base.K)
        assert abs(np.linalg.norm(delta, 2) - 0.2) < 1e-14 and np.linalg.matrix_rank(delta) == 1
    assert not np.array_equal(adapted.models[0].V, adapted.models[1].V)
    with pytest.raises(ValueError, match="lora_norm"):
        Layers.random(3, 2, lora_rank=1)
    with pytest.raises(ValueError, match="lora_rank"):
        Layers.random(3, 2, lora_norm=0.1)


# ------------------------------------------------------------------ the field
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("combine", ["sum", "mean"])
def test_multihead_field_is_the_sum_of_its_heads_direct(d, combine):
    """Solver test (an identity of the construction): head by head, bit for bit."""
    heads = [random_model(d, beta=1.5, seed=1), Attention(beta=2.0, d=d, normalized=False),
             Attention(beta=0.5, d=d, V=-np.eye(d))]
    x = unit_cloud(200, d)
    w = np.random.default_rng(2).random(200)
    w /= w.sum()
    model = MultiHead(heads, combine=combine)
    scale = 1.0 if combine == "sum" else 1.0 / 3
    expected = sum(scale * attention_field(x, x, w, h, method="direct") for h in heads)
    assert np.array_equal(attention_field(x, x, w, model, method="direct"), expected)


@pytest.mark.parametrize("d", [2, 3])
def test_multihead_fast_path_is_the_sum_of_the_direct_fields(d):
    """Each head through its own expansion (the S^1 Fourier path needs Q^T K = c R for every
    head; on S^2 any Q, K): against the sum of the direct sums, to the documented accuracy of
    the expansions (S^2: TRUSTED_BOUND = 1e-10 relative per target; S^1: 1e-8 for
    beta c <= 9, module continuum.circle.field; here beta c <= 2)."""
    if d == 2:
        heads = [Attention(beta=1.0, d=2, Q=rotation(2, 0.3), V=np.diag([1.0, 0.5])),
                 Attention(beta=2.0, d=2, K=0.5 * rotation(2, -1.0), normalized=False),
                 Attention(beta=0.7, d=2)]
    else:
        heads = [random_model(3, beta=1.0, seed=4), Attention(beta=2.0, d=3, normalized=False),
                 Attention(beta=0.7, d=3, Q=rotation(3, 0.4))]
    x = unit_cloud(2500, d, seed=3)  # 6.25e6 pairs: "auto" takes the expansion
    w = np.full(len(x), 1.0 / len(x))
    model = MultiHead(heads)
    reference = sum(attention_field(x, x, w, h, method="direct") for h in heads)
    size = max(np.abs(attention_field(x, x, w, h, method="direct")).max() for h in heads)
    for method in ("harmonic", "auto"):
        fast = attention_field(x, x, w, model, method=method)
        assert np.abs(fast - reference).max() <= (1e-10 if d == 3 else 1e-8) * size * 3
    # and head by head: the sum of the heads' own fast fields, bit for bit
    assert np.array_equal(attention_field(x, x, w, model, method="harmonic"),
                          sum(attention_field(x, x, w, h, method="harmonic") for h in heads))


def test_multihead_scales_and_energy_add_over_heads():
    heads = [Attention(beta=1.0, d=3, V=2 * np.eye(3)), Attention(beta=0.5, d=3, normalized=False)]
    model = MultiHead(heads, combine="mean")
    assert field_scale(model) == pytest.approx(0.5 * sum(field_scale(h) for h in heads),
                                               rel=4 * U)
    x = unit_cloud(50, 3)
    w = np.full(50, 0.02)
    assert interaction_energy(x, w, model) == pytest.approx(
        0.5 * sum(interaction_energy(x, w, h) for h in heads), rel=4 * U)
    depth = Layers([heads[0], model], 0.5)
    assert field_scale(depth) == max(field_scale(heads[0]), field_scale(model))


def test_multihead_usa_energy_identity():
    """USA heads with Q_h^T K_h = V_h = V_h^T: the field is the gradient of
    E = sum_h E_h, so dE/dt = int |X|^2 dmu (docs/design.md; checked along a particle run by
    a centred difference, error O(dt^2))."""
    rng = np.random.default_rng(7)
    heads = []
    for beta in (0.5, 1.5):
        S = rng.standard_normal((3, 3))
        S = (S + S.T) / 4 + np.eye(3)
        heads.append(Attention(beta=beta, d=3, K=S, V=S, normalized=False))
    model = MultiHead(heads)
    x0 = unit_cloud(300, 3, seed=8)
    h = 1e-3
    traj = simulate(model, x0, 2 * h, times=[0, h, 2 * h], dt=h / 4)
    E = [interaction_energy(traj.points[i], traj.weights, model) for i in range(3)]
    X = attention_field(traj.points[1], traj.points[1], traj.weights, model)
    rate = float(traj.weights @ np.einsum("ij,ij->i", X, X))
    assert abs((E[2] - E[0]) / (2 * h) - rate) <= 1e-5 * rate  # O(h^2) ~ 1e-6 relative


# ------------------------------------------------------------------ exact solutions
def test_zero_beta_heads_are_one_head_with_the_summed_value_matrix_spectral_s2():
    """At beta = 0 every head's field is P_x^perp V_h m, so MultiHead = Attention(V = sum_h
    w_h V_h), whose Poisson-kernel family is exact (continuum.sphere.exact): the spectral S^2
    solver holds it to the 1e-9 of tests/test_sphere_spectral.py (same L, tolerances)."""
    from continuum.sphere.exact import poisson_density, poisson_parameter

    V1 = np.array([[1.0, 0.3, 0.0], [-0.2, 0.6, 0.1], [0.05, 0.0, -0.4]])
    V2 = np.array([[0.2, 0.0, 0.4], [0.1, -0.3, 0.0], [0.0, 0.2, 0.5]])
    model = MultiHead([Attention(beta=0.0, d=3, V=V1), Attention(beta=0.0, d=3, V=V2,
                                                                 normalized=False)],
                      combine="mean")
    w0 = np.array([0.15, -0.2, 0.15])
    times = np.array([0.0, 1.0, 2.0])
    w = poisson_parameter(times, w0, (V1 + V2) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(model, lambda p: poisson_density(p, w0), 2.0, method="spectral",
                    resolution=48, times=times, rtol=1e-13, atol=1e-15)
    assert sol.info["field"] == "funk-hecke,funk-hecke"
    for i in range(len(times)):
        exact = poisson_density(sol.points, w[i])
        assert np.max(np.abs(sol.density(i) - exact)) <= 1e-9 * exact.max()


def test_poisson_family_across_layer_switches_spectral_s2():
    """Layers of beta = 0 models with different V_k: the Poisson parameter follows each
    layer's ODE in turn (chained exact solution); the spectral S^2 solver restarts DOP853 at
    the switch (t = 0.7, not a saved time) and holds the family to 1e-9 as for one model."""
    from continuum.sphere.exact import poisson_density, poisson_parameter

    V = [np.array([[1.0, 0.3, 0.0], [-0.2, 0.6, 0.1], [0.05, 0.0, -0.4]]),
         np.array([[-0.5, 0.0, 0.4], [0.1, 0.8, 0.0], [0.0, 0.2, 0.3]])]
    depth = Layers([Attention(beta=0.0, d=3, V=v) for v in V], layer_time=0.7)
    w0 = np.array([0.15, -0.2, 0.15])
    times = np.array([0.0, 0.5, 1.0, 1.5])
    first = poisson_parameter([0.0, 0.5, 0.7], w0, V[0])  # w(0), w(0.5), w(0.7)
    exact_w = [*first[:2], *poisson_parameter([0.0, 0.3, 0.8], first[2], V[1])[1:]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(depth, lambda p: poisson_density(p, w0), 1.5, method="spectral",
                    resolution=48, times=times, rtol=1e-13, atol=1e-15)
    for i in range(len(times)):
        exact = poisson_density(sol.points, exact_w[i])
        assert np.max(np.abs(sol.density(i) - exact)) <= 1e-9 * exact.max()
    # without the restart (one model throughout) the density is wrong by far more
    wrong = poisson_density(sol.points, poisson_parameter(times, w0, V[0])[-1])
    assert np.max(np.abs(sol.density(3) - wrong)) > 1e-3 * wrong.max()


def dirac_exact(depth, x0, t):
    """prod_k e^{tau_k V_k} x0 / |.| for the layers in force on [0, t] (SA, any beta)."""
    x, s = np.array(x0, dtype=float), 0.0
    while s < t:
        m, nxt = model_at(depth, s)
        end = min(nxt, t)
        x = scipy.linalg.expm((end - s) * m.V) @ x
        x /= np.linalg.norm(x)
        s = end
    return x


def dirac_layers():
    rng = np.random.default_rng(11)
    models = [Attention(beta=b, d=3, Q=0.5 * rng.standard_normal((3, 3)),
                        V=rng.standard_normal((3, 3))) for b in (0.5, 2.0, 1.0, 3.0)]
    return Layers(models, layer_time=0.37)


def test_dirac_moves_by_the_product_of_layer_exponentials_dop853():
    """A Dirac (tokens at one point) stays a Dirac for SA and moves as
    prod_k e^{tau V_k} x0 / |.|; DOP853 (rtol 1e-12) restarted at each switch holds it."""
    depth = dirac_layers()
    x0 = np.tile(unit_cloud(1, 3, seed=12), (3, 1))
    times = np.linspace(0.0, 1.5, 4)  # switches 0.37, 0.74, 1.11 inside the intervals
    traj = simulate(depth, x0, 1.5, times=times, method="dop853", rtol=1e-12, atol=1e-14)
    for i, t in enumerate(times):
        assert np.abs(traj.points[i] - dirac_exact(depth, x0[0], t)).max() < 1e-9


def test_dirac_across_switches_rk4_keeps_order_four():
    """RK4 steps end on every switch: the error against the exact Dirac path falls with the
    fitted order 4 (+- 0.3); one step across a switch would leave an O(dt) error."""
    depth = dirac_layers()
    x0 = unit_cloud(1, 3, seed=12)
    errors, steps = [], [0.04, 0.02, 0.01]
    for dt in steps:
        traj = simulate(depth, x0, 1.5, times=[0.0, 1.5], dt=dt)
        errors.append(np.abs(traj.points[1, 0] - dirac_exact(depth, x0[0], 1.5)).max())
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(order - 4) < 0.3, (order, errors)
    assert errors[-1] < 1e-7


# ------------------------------------------------------------------ identical layers
def test_identical_layers_are_the_time_independent_model_bit_for_bit_particles():
    model = random_model(3, beta=2.0, seed=3)
    depth = Layers([model] * 4, layer_time=0.25)
    x0 = unit_cloud(40, 3, seed=1)
    times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
    for method in ("rk4", "layers"):
        a = simulate(model, x0, 1.5, times=times, method=method, dt=0.05)
        b = simulate(depth, x0, 1.5, times=times, method=method, dt=0.05)
        assert np.array_equal(a.points, b.points), method
    # DOP853 restarts its error control at each switch: the same flow to its tolerance
    a = simulate(model, x0, 1.5, times=times, method="dop853", rtol=1e-12, atol=1e-14)
    b = simulate(depth, x0, 1.5, times=times, method="dop853", rtol=1e-12, atol=1e-14)
    assert np.abs(a.points - b.points).max() < 1e-9


def test_identical_layers_are_the_time_independent_model_bit_for_bit_fv():
    """march caps the step at each switch; with the switches among the saved times the
    steps are those of the time-independent run, bit for bit."""
    model = Attention(beta=2.0, d=2, V=np.diag([1.0, 0.6]))
    depth = Layers([model] * 3, layer_time=0.25)

    def rho0(p):
        return (1 + 0.3 * p[:, 0]) / (2 * np.pi)

    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    a = solve(model, rho0, 1.0, method="fv", resolution=64, times=times)
    b = solve(depth, rho0, 1.0, method="fv", resolution=64, times=times)
    assert np.array_equal(a.densities, b.densities)
    assert a.info["steps"] == b.info["steps"]


def test_layers_switch_inside_a_step_interval_fv_lands_on_it():
    """A switch between saved times: march ends a step on it (the step count grows by at most
    one per switch) and the two halves run different models (the result differs from
    either model alone)."""
    a, b = Attention(beta=1.0, d=2), Attention(beta=1.0, d=2, V=-np.eye(2))
    depth = Layers([a, b], layer_time=0.3)

    def rho0(p):
        return (1 + 0.3 * p[:, 0]) / (2 * np.pi)

    runs = {name: solve(m, rho0, 0.5, method="fv", resolution=64, times=[0.0, 0.5])
            for name, m in (("a", a), ("b", b), ("depth", depth))}
    r_a, r_b, r = (runs[k].diagnostics["order_parameter"][-1] for k in ("a", "b", "depth"))
    assert r_b < r < r_a  # V = I concentrates, V = -I spreads


# ------------------------------------------------------------------ growth rates
def zonal_heads(d):
    return MultiHead([Attention(beta=1.0, d=d), Attention(beta=4.0, d=d),
                      Attention(beta=2.0, d=d, normalized=False)])


def test_heads_growth_rate_is_the_sum_and_refuses_non_zonal_heads():
    model = zonal_heads(3)
    assert heads_growth_rate(2, model) == pytest.approx(
        uniform_growth_rate(2, 1.0, 3) + uniform_growth_rate(2, 4.0, 3)
        + uniform_growth_rate(2, 2.0, 3, normalized=False), rel=4 * U)
    with pytest.raises(ValueError, match="head 1"):
        heads_growth_rate(1, MultiHead([Attention(d=3), Attention(d=3, V=2 * np.eye(3))]))


def test_growth_rates_of_zonal_heads_add_spectral_s1():
    """Uniform state + 1e-4 cos k theta: the spectral S^1 solver's rate equals the sum of the
    heads' rates to the 1e-6 of validation/circle_growth_rates.py."""
    from validation.circle_growth_rates import TOLERANCE, measured_rate

    model = zonal_heads(2)
    for k in (1, 2, 3):
        expected = heads_growth_rate(k, model)
        measured = measured_rate(model, k, T=min(1.0 / expected, 2.0), rtol=1e-12, atol=1e-14)
        assert abs(measured / expected - 1) < TOLERANCE, (k, measured, expected)


def test_growth_rates_of_zonal_heads_add_spectral_s2():
    """Sectoral perturbation: the spectral S^2 solver (Funk-Hecke head by head) gives the sum
    of the heads' rates to the 1e-8 of validation/sphere_spectral_growth_rates.py."""
    from validation.sphere_spectral_growth_rates import TOLERANCE, measured_rate

    model = zonal_heads(3)
    for l in (1, 2, 3):
        expected = heads_growth_rate(l, model)
        measured = measured_rate(model, l, T=min(1.0 / expected, 2.0))
        assert abs(measured / expected - 1) < TOLERANCE, (l, measured, expected)


@pytest.mark.slow
def test_growth_rates_of_zonal_heads_add_particles():
    """Lattice particles (particles.growth) measure the sum of the heads' rates to the 1e-4 of
    validation/growth_rates.py, on S^1 and S^2."""
    from particles.growth import growth_rate_circle, growth_rate_sphere
    from validation.growth_rates import TOLERANCE

    for d, measure, modes in ((2, growth_rate_circle, (1, 2)), (3, growth_rate_sphere, (1, 2))):
        model = zonal_heads(d)
        for k in modes:
            expected = heads_growth_rate(k, model)
            size = {"n": 256} if d == 2 else {"n_lat": 16}
            assert abs(measure(model, k, **size) / expected - 1) < TOLERANCE, (d, k)


# ------------------------------------------------------------------ every solver
@pytest.mark.parametrize("method,d,resolution", [("spectral", 2, 64), ("fv", 2, 128),
                                                 ("spectral", 3, 24), ("fem", 3, 2)])
def test_usa_heads_with_one_kernel_are_one_head_with_the_summed_value_matrix(method, d,
                                                                              resolution):
    """USA is linear in V: heads sharing beta, Q, K sum to one head with V = sum_h V_h. Every
    solver, head by head, gives that head's solution to the time integration's tolerance
    (the right-hand sides agree to round-off; the steps of fv and fem follow the same CFL
    speeds up to round-off)."""
    V1, V2 = np.eye(d) * 0.7, np.diag(np.linspace(0.1, 0.4, d))
    heads = MultiHead([Attention(beta=1.0, d=d, V=V1, normalized=False),
                       Attention(beta=1.0, d=d, V=V2, normalized=False)])
    single = Attention(beta=1.0, d=d, V=V1 + V2, normalized=False)

    def rho0(p):
        return (1 + 0.3 * p[:, 0] + 0.2 * p[:, 1] ** 2 - 0.2 / d) / (2 * np.pi if d == 2
                                                                      else 4 * np.pi)

    times = [0.0, 0.25, 0.5]
    options = {"rtol": 1e-12, "atol": 1e-14} if method == "spectral" else {}
    a = solve(heads, rho0, 0.5, method=method, resolution=resolution, times=times, **options)
    b = solve(single, rho0, 0.5, method=method, resolution=resolution, times=times, **options)
    assert np.abs(a.densities - b.densities).max() <= 1e-9 * np.abs(b.densities).max()
    # the energy does not involve V: sum_h E_h is twice the shared kernel's
    assert np.allclose(a.diagnostics["energy"], 2 * b.diagnostics["energy"], rtol=1e-8)
    assert np.all(np.isnan(a.diagnostics["log_kernel_mean"]))  # no single kernel


def test_schedule_builds_once_per_layer_model():
    a, b = Attention(d=2), Attention(beta=2.0, d=2)
    built = []
    schedule = Schedule(Layers([a, b, a], 1.0), lambda m: built.append(m) or len(built))
    assert schedule.current is a and schedule.built == 1
    assert schedule.switch(1.0) == 2.0 and schedule.current is b
    assert schedule.switch(2.0) == math.inf and schedule.built == 1  # a's, cached
    assert built == [a, b]


def test_forgetting_run_with_a_perturbed_head():
    from forgetting import forgetting_run
    from forgetting.bounds import lipschitz_constants, perturbation_log_forcing

    heads = MultiHead([Attention(beta=1.0, d=2), Attention(beta=0.5, d=2, V=np.diag([1, .5]))])
    delta = lora_update(2, rank=1, norm=0.2, seed=0)
    tuned = heads.perturbed(head=1, V=delta)
    run = forgetting_run(heads, tuned, backend="particles", T=1.0, times=[0, 0.5, 1.0], n=64)
    assert run.deviation_w2[0] == 0 and run.deviation_w2[-1] > 0
    assert run.delta_norm == pytest.approx(0.2, rel=1e-12)
    # eps = w_h ||Delta V|| for SA (the head's forcing is 1), L summed over heads
    assert math.exp(perturbation_log_forcing(heads, tuned)) == pytest.approx(0.2, rel=1e-12)
    c = lipschitz_constants(heads)
    assert c["L"] == pytest.approx(sum(lipschitz_constants(h)["L"] for h in heads.heads))
    with pytest.raises(ValueError, match="tuned"):
        forgetting_run(heads, MultiHead([Attention(d=2)]), T=1.0, n=8)


@pytest.mark.slow
def test_family_validation_case_quick():
    """validation/family_exact.py (small parameters): every record passes."""
    from validation import family_exact

    records = family_exact.main(quick=True)
    assert len(records) == 6
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]


def test_study_config_heads_keys():
    """[model] heads / combine and [perturbation] head: checked before any run (errors name
    the key), the update goes to the named head, and a study without them keeps its config
    (and so its points' hashes) as before."""
    import copy

    from forgetting.config import DEFAULT_STUDY, ConfigError, build_models, validate_config

    plain = validate_config(copy.deepcopy(DEFAULT_STUDY))
    assert "heads" not in plain["model"] and "head" not in plain["perturbation"]
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["model"].update(heads=[{"V_diag": [1.0, 0.8]}, {"beta": 4.0, "V_diag": [1.0, 0.5]}],
                        combine="mean")
    cfg["perturbation"]["head"] = 1
    base, tuned = build_models(validate_config(cfg), 0.3)
    assert isinstance(base, MultiHead) and base.combine == "mean"
    assert base.heads[1].beta == 4.0 and base.heads[0].beta == 1.0  # [model]'s beta
    assert tuned.heads[0] is base.heads[0]
    assert np.array_equal(tuned.heads[1].V, np.diag([1.0, 0.8]))
    for key, value, where in (("heads", [{"beta": "x"}], "'model.heads': head 0: 'beta'"),
                              ("heads", [{"W": 1}], "'model.heads': head 0: unknown"),
                              ("heads", [], "'model.heads'"),
                              ("combine", "max", "'model.combine'")):
        bad = copy.deepcopy(cfg)
        bad["model"][key] = value
        with pytest.raises(ConfigError, match=where):
            validate_config(bad)
    bad = copy.deepcopy(cfg)
    bad["perturbation"]["head"] = 2
    with pytest.raises(ConfigError, match="'perturbation.head'"):
        validate_config(bad)
    bad["sweep"]["axis"], bad["perturbation"]["head"] = "beta", 0
    with pytest.raises(ConfigError, match="'sweep.axis'"):
        validate_config(bad)
    single = copy.deepcopy(DEFAULT_STUDY)
    single["perturbation"]["head"] = 1
    with pytest.raises(ConfigError, match="'perturbation.head'"):
        validate_config(single)


def test_causal_heads_in_a_multihead():
    """A MultiHead of causal heads: its field is the sum of the heads' masked fields (bit for
    bit), particles run it, and solve refuses it (the causal continuum takes one Attention)."""
    heads = [Attention(beta=1.0, d=3, causal=True), Attention(beta=2.0, d=3, V=-np.eye(3),
                                                               causal=True)]
    model = MultiHead(heads)
    x = unit_cloud(30, 3, seed=4)
    w = np.full(30, 1 / 30)
    assert np.array_equal(attention_field(x, x, w, model),
                          sum(attention_field(x, x, w, h) for h in heads))
    traj = simulate(model, x, 0.2, times=[0.0, 0.2], dt=0.05)
    # token 0 sees itself only: X = 0, it moves by the retraction's round-off (4 steps)
    assert np.abs(traj.points[1, 0] - x[0]).max() <= 4 * 4 * U
    with pytest.raises(ValueError, match="causal head"):
        solve(model, lambda p: np.full(len(p), 1 / (4 * np.pi)), 1.0, method="spectral")


def test_study_config_layers_keys():
    """[model] layers / layer_time and [perturbation] layer: checked before any run, the update
    goes to the named layer or to every layer, and a study runs on them (particles and fv)."""
    import copy

    from forgetting import forgetting_run
    from forgetting.config import DEFAULT_STUDY, ConfigError, build_models, validate_config

    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["model"].update(layers=[{"V_diag": [1.0, 0.8]}, {"V_diag": [1.0, 0.5]}],
                        layer_time=0.5)
    base, tuned = build_models(validate_config(copy.deepcopy(cfg)), 0.3)
    assert isinstance(base, Layers) and base.layer_time == 0.5
    assert all(np.array_equal(t.V, m.V + np.diag([0.0, 0.3]))
               for m, t in zip(base.models, tuned.models))
    cfg["perturbation"]["layer"] = 1
    base, tuned = build_models(validate_config(copy.deepcopy(cfg)), 0.3)
    assert tuned.models[0] is base.models[0]
    assert np.array_equal(tuned.models[1].V, np.diag([1.0, 0.8]))
    run = forgetting_run(base, tuned, backend="fv", rho0=lambda p: (1 + 0.5 * p[:, 0]) /
                         (2 * np.pi), T=1.0, times=[0.0, 0.5, 1.0], resolution=64)
    assert run.deviation_w2[1] == 0 and run.deviation_w2[2] > 0  # layer 1 starts at 0.5
    for section, key, value, where in (
            ("model", "layer_time", 0.0, "'model.layer_time'"),
            ("model", "layers", [{"Q": [1, 2]}], "'model.layers': layer 0: 'Q'"),
            ("model", "heads", [{}], "'model.layers' excludes 'model.heads'"),
            ("perturbation", "layer", 2, "'perturbation.layer'"),
            ("perturbation", "layer", "some", "'perturbation.layer'")):
        bad = copy.deepcopy(cfg)
        bad[section][key] = value
        with pytest.raises(ConfigError, match=where):
            validate_config(bad)
