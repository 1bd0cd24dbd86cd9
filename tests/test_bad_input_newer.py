"""Bad input to the newer modules (issue 22, item 4, API side): every public function checks
its input with the rules of ``continuum.checks`` (type, range, finiteness, shape, a size
refused before allocation, the parameter named in the message), and the step guard's
messages name the parameter that sets the scale with one remedy for the geometry at hand.

Each class of defect has at least two cases, one of them not in the issue's list.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from continuum import Attention, Measure, solve
from continuum import sobolev
from continuum import wasserstein as ws
from continuum.checks import physical_memory
from continuum.geometry import uniform_points
from continuum.kernels import attention_field
from continuum.timestep import COLLAPSE_GEOMETRIES, StepCollapseError, collapse_reason
from particles import simulate

# a size no machine this package runs on holds (the checks compare with physical memory)
HUGE = 10**7


def cloud(n=30, d=3, seed=0):
    return uniform_points(n, d, np.random.default_rng(seed))


def measure(n=30, d=3, seed=0):
    return Measure(cloud(n, d, seed))


def named(word):
    """A pattern for a message that starts with the parameter's name (as every message of
    ``continuum.checks`` does)."""
    return rf"^{re.escape(word)}\b"


def uniform_s2(p):
    return np.full(len(p), 1 / (4 * np.pi))


# ------------------------------------------------------------------ continuum.sobolev

@pytest.mark.parametrize("call, kind, word", [
    (lambda mu, nu: sobolev.sobolev_distance(mu, nu, s="2"), TypeError, "s"),
    (lambda mu, nu: sobolev.sobolev_distance(mu, nu, s=float("nan")), ValueError, "s"),
    (lambda mu, nu: sobolev.sobolev_distance(mu, nu, s=-1.0), ValueError, "s"),
    (lambda mu, nu: sobolev.sobolev_distance(mu, nu, L=2.0), TypeError, "L"),
    (lambda mu, nu: sobolev.sobolev_distance(mu, nu, L=0), ValueError, "L"),
    (lambda mu, nu: sobolev.truncation_bound(3, s="2"), TypeError, "s"),
    (lambda mu, nu: sobolev.truncation_bound(4), ValueError, "d"),
    (lambda mu, nu: sobolev.truncation_bound(3, terms=0), ValueError, "terms"),
])
def test_sobolev_options_are_type_and_range_checked(call, kind, word):
    with pytest.raises(kind, match=named(word)):
        call(measure(), measure(seed=1))


@pytest.mark.parametrize("call, word", [
    (lambda m: sobolev.sobolev_distance(m.points, m), "mu"),
    (lambda m: sobolev.sobolev_distance(m, m.points), "nu"),
    (lambda m: sobolev.sampling_expectation(m.points, 10), "mu"),
    (lambda m: sobolev.sobolev_coefficients([[1.0, 0.0, 0.0]]), "mu"),
])
def test_sobolev_takes_measures_not_arrays(call, word):
    with pytest.raises(TypeError, match=named(word)):
        call(measure())


@pytest.mark.parametrize("n, kind", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                     ("10", TypeError), (True, TypeError)])
def test_sampling_expectation_needs_a_positive_integer_n(n, kind):
    with pytest.raises(kind, match=named("n")):
        sobolev.sampling_expectation(measure(), n)


def test_coefficients_of_different_degree_or_dimension_are_refused():
    mu, nu = measure(), measure(seed=1)
    c8, c10 = sobolev.sobolev_coefficients(mu, 8), sobolev.sobolev_coefficients(nu, 10)
    with pytest.raises(ValueError, match="c_nu.*degree"):
        sobolev.coefficient_distance(c8, c10, 3, L=8)
    # S^1 coefficients (2L + 1 of them) given as S^2 ones
    c1 = sobolev.sobolev_coefficients(measure(d=2), 8)
    with pytest.raises(ValueError, match="c_mu"):
        sobolev.coefficient_distance(c1, c8, 3, L=8)
    bad = c8.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="c_mu.*non-finite"):
        sobolev.coefficient_distance(bad, c8, 3, L=8)
    with pytest.raises(TypeError, match="c_nu"):
        sobolev.coefficient_distance(c8, ["a"] * c8.size, 3, L=8)
    # the same coefficients agree with the measures' distance (the check changes nothing)
    assert sobolev.coefficient_distance(c8, sobolev.sobolev_coefficients(nu, 8), 3, L=8) == \
        sobolev.sobolev_distance(mu, nu, L=8)


def test_sobolev_degree_beyond_memory_is_refused_before_allocating():
    # L = 10^5 on S^2: 5e9 complex coefficients (74 GiB) before the fix
    with pytest.raises(MemoryError, match="L") as err:
        sobolev.sobolev_distance(measure(), measure(seed=1), L=10**5)
    assert "GiB" in str(err.value)
    with pytest.raises(MemoryError, match="L"):
        sobolev.sampling_expectation(measure(), 10, L=10**5)
    # S^1 needs 2L + 1 coefficients: L = 10^10 is beyond memory too
    with pytest.raises(MemoryError, match="L"):
        sobolev.sobolev_coefficients(measure(d=2), 10**10)


# ------------------------------------------------------------------ continuum.wasserstein

def test_every_cost_matrix_is_refused_beyond_memory_before_allocating():
    """wasserstein_reduced's cost matrix (27 GiB before the fix), wasserstein_sphere's and
    ground_cost's: each sized against the machine's memory before any is built."""
    n = int(math.sqrt(physical_memory() / 8)) + 10  # one float64 n x n matrix is over memory
    big, other = Measure(cloud(n, seed=2)), Measure(cloud(n, seed=3))
    small = measure()
    with pytest.raises(MemoryError, match="max_support"):
        ws.wasserstein_reduced(big, other, max_support=n)
    with pytest.raises(MemoryError, match="mu, nu"):
        ws.wasserstein_reduced(big, other, max_support=None)
    assert ws.wasserstein_reduced(big, big, max_support=None)[0] == {1: 0.0, 2: 0.0}
    with pytest.raises(MemoryError, match="mu, nu"):
        ws.wasserstein_sphere(big, big)
    with pytest.raises(MemoryError, match="x, y"):
        ws.ground_cost(big.points, big.points)
    # a reduction to a size that fits still runs (bounded by its certified error)
    values, bounds = ws.wasserstein_reduced(big, small, max_support=50)
    assert np.isfinite(values[2]) and np.isfinite(bounds[2])


@pytest.mark.parametrize("call, kind, word", [
    (lambda m: ws.wasserstein_reduced(m.points, m), TypeError, "mu"),
    (lambda m: ws.reduce_pair(m, m.points, 10), TypeError, "nu"),
    (lambda m: ws.reduce_pair(m, m, 0), ValueError, "max_support"),
    (lambda m: ws.reduce_pair(m, m, 2.5), TypeError, "max_support"),
    (lambda m: ws.wasserstein_sphere(m, m, cost="euclid"), ValueError, "cost"),
    (lambda m: ws.wasserstein_sphere(m, m, p="2"), TypeError, "p"),
    (lambda m: ws.ground_cost(m.points, np.ones((3, 2))), ValueError, "y"),
    (lambda m: ws.ground_cost(2 * m.points, m.points), ValueError, "x"),
    (lambda m: ws.ground_cost(m.points, m.points, cost=3), ValueError, "cost"),
    (lambda m: ws.wasserstein_circle(m, m), ValueError, "S\\^1"),
    (lambda m: ws.wasserstein_sphere(m, measure(d=2)), ValueError, "different dimensions"),
])
def test_wasserstein_inputs_are_checked(call, kind, word):
    with pytest.raises(kind, match=word):
        call(measure())


# ------------------------------------------------------------------ the spectral S^2 solver

@pytest.mark.parametrize("beta", [800.0, 5000.0])
def test_sphere_spectral_usa_beyond_float64_is_refused_naming_beta(beta):
    model = Attention(beta=beta, d=3, normalized=False)
    with pytest.raises(ValueError, match="beta") as err:
        solve(model, uniform_s2, 0.1, method="spectral", resolution=8, progress=False)
    assert "USA scale" in str(err.value) and "float64" in str(err.value)


def test_sphere_spectral_usa_scale_through_q_and_k_is_refused_too():
    # beta = 100 is harmless alone; ||Q^T K|| = 10 makes the exponent 1000
    model = Attention(beta=100.0, d=3, Q=np.sqrt(10) * np.eye(3), K=np.sqrt(10) * np.eye(3),
                      normalized=False)
    with pytest.raises(ValueError, match="beta.*Q\\^T K"):
        solve(model, uniform_s2, 0.1, method="spectral", resolution=8, progress=False)


# ------------------------------------------------------------------ collapse messages

def _remedy_words(message):
    return {"lower": "lower the resolution" in message,
            "increase": "increase resolution" in message}


@pytest.mark.parametrize("geometry", COLLAPSE_GEOMETRIES)
def test_collapse_reason_gives_one_remedy_per_geometry(geometry):
    message = collapse_reason(Attention(beta=30.0, d=3), geometry)
    words = _remedy_words(message)
    assert not (words["lower"] and words["increase"]), message  # never both
    if geometry in ("S1 fv", "S2 fem"):  # the CFL step: the speed <= ||V|| sets it
        assert "||V|| = 1" in message
    else:
        assert "beta ||Q^T K|| = 30" in message
    if geometry.endswith("spectral"):
        assert words["increase"]
        assert ("method='fv'" in message) == (geometry == "S1 spectral")
        assert ("method='fem'" in message) == (geometry == "S2 spectral")
    elif geometry in ("S1 fv", "S2 fem"):
        assert words["lower"] and "method=" not in message
    else:
        assert "resolution" not in message


@pytest.mark.parametrize("model, name", [
    (Attention(beta=20.0, d=3, normalized=False), "USA scale e^(beta ||Q^T K||)"),
    (Attention(beta=1.0, d=3, V=1e300 * np.eye(3)), "||V||"),
    (Attention(beta=0.0, d=2, V=50 * np.eye(2)), "||V||"),
    (Attention(beta=4.0, d=3, Q=3 * np.eye(3)), "||Q^T K|| = 3"),
])
def test_collapse_reason_names_the_parameter_that_sets_the_scale(model, name):
    grid = ("S1 fv", "S2 fem") if name == "||Q^T K|| = 3" else ()  # CFL: not beta's scale
    for geometry in set(COLLAPSE_GEOMETRIES) - set(grid):
        message = collapse_reason(model, geometry)
        assert name in message, (geometry, message)
    if name == "||V||":  # a huge V is not blamed on beta
        assert "V sets the time scale" in collapse_reason(model, "particles")


def test_collapse_reason_checks_its_geometry():
    with pytest.raises(ValueError, match="geometry"):
        collapse_reason(Attention(d=3), "S3 spectral")
    with pytest.raises(ValueError, match="geometry"):
        collapse_reason(Attention(d=3), True)


def test_huge_v_is_named_in_the_step_guard_not_beta():
    with pytest.raises(StepCollapseError, match="V sets the time scale") as err:
        simulate(Attention(beta=1.0, d=3, V=1e300 * np.eye(3)), cloud(10), 0.1)
    assert "e+300 steps" in str(err.value)  # a count, not a 300-digit integer


# ------------------------------------------------------------------ attention_field(check=False)

@pytest.mark.parametrize("method", ["direct", "harmonic", "auto"])
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("where", ["targets", "sources", "weights"])
def test_check_false_still_refuses_non_finite_input(method, d, where):
    x = cloud(50, d)
    arrays = {"targets": x.copy(), "sources": x.copy(), "weights": np.full(50, 0.02)}
    arrays[where][3] = np.nan if where != "sources" else np.inf
    with pytest.raises(ValueError, match=f"{where}.*non-finite"):
        attention_field(arrays["targets"], arrays["sources"], arrays["weights"],
                        Attention(beta=1.0, d=d), method=method, check=False)


def test_check_false_still_checks_shapes_and_the_model():
    x = cloud(20)
    with pytest.raises(ValueError, match="weights"):
        attention_field(x, x, np.full(19, 0.05), Attention(d=3), check=False)
    with pytest.raises(ValueError, match="targets"):
        attention_field(cloud(20, d=2), x, np.full(20, 0.05), Attention(d=3), check=False)
    with pytest.raises(TypeError, match="model"):
        attention_field(x, x, np.full(20, 0.05), "model", check=False)
    # what check=False skips on purpose: points off the sphere (RK stages) are evaluated
    off = 1.01 * x
    assert np.all(np.isfinite(attention_field(off, off, np.full(20, 0.05), Attention(d=3),
                                              check=False)))


# ------------------------------------------------------------------ particles at large scales

@pytest.mark.parametrize("beta", [400.0, 700.0])
def test_layers_at_large_usa_beta_within_float64_runs(beta):
    """e^400 and e^700 fit in float64 (e^709.78 is the limit): the layers map
    x -> (x + h X) / |x + h X| is well defined; before the fix |x + h X|^2 overflowed and the
    run failed blaming the float64 range. A step h |X| >> 1 turns each token to X's direction,
    so every token ends on the sphere."""
    traj = simulate(Attention(beta=beta, d=3, normalized=False), cloud(16), 0.2,
                    times=[0.0, 0.1, 0.2], method="layers", dt=0.1)
    assert np.all(np.isfinite(traj.points))
    assert np.abs(np.linalg.norm(traj.points, axis=2) - 1).max() < 1e-12


def test_field_overflow_names_v_when_v_is_the_cause():
    # USA with beta ||Q^T K|| = 5: e^5 fits, ||V|| e^5 = 1.5e310 does not
    model = Attention(beta=5.0, d=3, V=1e308 * np.eye(3), normalized=False)
    x = cloud(20)
    with pytest.raises(FloatingPointError, match="V is too large") as err:
        attention_field(x, x, np.full(20, 0.05), model, method="direct")
    assert "float64 range" in str(err.value) and "e^709" not in str(err.value)
    # and USA's kernel beyond float64 names beta
    with pytest.raises(FloatingPointError, match="beta=800"):
        attention_field(x, x, np.full(20, 0.05), Attention(beta=800.0, d=3, normalized=False),
                        method="direct")


def test_a_layers_step_beyond_float64_names_the_scale():
    # beta = 0, V = 1e308 I: X = P_x^perp V m is finite (|m| < 1), h X with h = 1000 is not
    model = Attention(beta=0.0, d=3, V=1e308 * np.eye(3))
    with pytest.raises(FloatingPointError, match="beyond the float64 range") as err:
        simulate(model, cloud(8), 1e3, times=[0.0, 1e3], method="layers", dt=1e3)
    assert "V sets the time scale" in str(err.value)
    # USA: e^700 fits, a step of h = 1e200 on top of it does not
    model = Attention(beta=700.0, d=3, normalized=False)
    with pytest.raises(FloatingPointError, match="USA scale"):
        simulate(model, cloud(8), 1e200, times=[0.0, 1e200], method="layers", dt=1e200)


# ------------------------------------------------------------------ the sweep of the public API
# every public function of the modules above checks its input the same way: one table per
# class of defect (wrong type, non-finite, wrong shape, out of range, beyond memory)

from continuum import direct, kernels  # noqa: E402
from continuum.circle import clusters as circle_clusters  # noqa: E402
from continuum.circle import exact as circle_exact  # noqa: E402
from continuum.linear import uniform_growth_rate  # noqa: E402
from continuum.sphere import exact as sphere_exact  # noqa: E402
from continuum.sphere import harmonic  # noqa: E402
from forgetting import bounds, observables  # noqa: E402
from particles import growth  # noqa: E402
from particles.sampling import check_density  # noqa: E402

M3 = Attention(beta=1.0, d=3)
X3 = cloud(20)
W = np.full(20, 0.05)


def with_nan(a, index=(2,)):
    a = np.array(a, dtype=float)
    a[index] = np.nan
    return a


WRONG_TYPE = [
    (lambda: uniform_growth_rate("1", 1.0, 3), "l"),
    (lambda: uniform_growth_rate(1, "1.0", 3), "beta"),
    (lambda: uniform_growth_rate(1, 1.0, 3, normalized="yes"), "normalized"),
    (lambda: circle_exact.kuramoto_order_parameter(1.0, "0.5"), "r0"),
    (lambda: circle_exact.sample_wrapped_cauchy(10.0, 0.5), "n"),
    (lambda: circle_clusters.count_clusters_circle(cloud(10, 2)), "mu"),
    (lambda: circle_clusters.count_clusters_circle(measure(d=2), bins=25.6), "bins"),
    (lambda: kernels.interaction_energy(X3, W, "model"), "model"),
    (lambda: kernels.log_kernel_mean(X3, W, M3, energy="1"), "energy"),
    (lambda: direct.direct_field(X3, X3, W, None), "model"),
    (lambda: harmonic.harmonic_degree("2"), "kappa"),
    (lambda: harmonic.sphere_harmonics(X3, 4.0), "L"),
    (lambda: harmonic.harmonic_field(X3, X3, W, M3, nthreads=1.5), "nthreads"),
    (lambda: Measure(X3).interaction_energy("model"), "model"),
    (lambda: bounds.lipschitz_constants(np.eye(3)), "model"),
    (lambda: bounds.dirac_time_to_deviation("0.5", 0.1, 0.1, 0.2), "delta"),
    (lambda: growth.growth_rate_circle(Attention(d=2), 1.0), "k"),
    (lambda: growth.growth_dt("model"), "model"),
    (lambda: check_density(uniform_s2, 3, rng=0), "rng"),
    (lambda: check_density(uniform_s2, "3"), "d"),
]


@pytest.mark.parametrize("call, word", WRONG_TYPE)
def test_wrong_types_are_type_errors_naming_the_parameter(call, word):
    with pytest.raises(TypeError, match=named(word)):
        call()


NON_FINITE = [
    (lambda: kernels.interaction_energy(X3, with_nan(W), M3), "weights"),
    (lambda: kernels.log_kernel_mean(with_nan(X3), W, M3), "points"),
    (lambda: direct.direct_field(with_nan(X3), X3, W, M3), "targets"),
    (lambda: direct.interaction_energy(X3, with_nan(W), M3), "weights"),
    (lambda: harmonic.harmonic_field(X3, with_nan(X3), W, M3), "sources"),
    (lambda: harmonic.harmonic_energy(X3, with_nan(W), M3), "weights"),
    (lambda: sphere_exact.poisson_density(X3, [0.1, np.nan, 0.0]), "w"),
    (lambda: sphere_exact.poisson_parameter([0.0, np.inf], [0.1, 0, 0], np.eye(3)), "times"),
    (lambda: circle_exact.kuramoto_order_parameter([0.0, np.nan], 0.5), "t"),
    (lambda: circle_exact.wrapped_cauchy_density(cloud(5, 2), 0.5, psi=np.inf), "psi"),
    (lambda: bounds.gronwall_bound(M3, 0.1, [0.0, np.nan]), "t"),
    (lambda: bounds.spectral_gap(with_nan(np.eye(3), (0, 1))), "V"),
    (lambda: observables.cluster_times([0.0, 1.0], with_nan(np.stack([X3, X3]),
                                                             (1, 0, 0)), X3[:2], 0.1),
     "tuned_points"),
    (lambda: observables.reference_clusters(with_nan(X3), 0.1), "points"),
    (lambda: harmonic.zonal_factor(with_nan(np.eye(3), (1, 1))), "A"),
]


@pytest.mark.parametrize("call, word", NON_FINITE)
def test_non_finite_input_is_a_value_error_naming_the_parameter(call, word):
    with pytest.raises(ValueError, match=named(word)):
        call()


WRONG_SHAPE = [
    (lambda: kernels.interaction_energy(X3, W[:-1], M3), "weights"),
    (lambda: kernels.interaction_energy(cloud(20, 2), W, M3), "points"),
    (lambda: direct.direct_field(X3, X3, W[:5], M3), "weights"),
    (lambda: harmonic.harmonic_field(cloud(20, 2), X3, W, M3), "targets"),
    (lambda: harmonic.to_real(np.zeros(7, complex), 4), "alm"),
    (lambda: harmonic.from_real(np.zeros(24), 4), "r"),
    (lambda: harmonic.kernel_matrix(np.eye(2), 1.0, 4), "A"),
    (lambda: sphere_exact.poisson_density(cloud(5, 2), [0.1, 0.0, 0.0]), "points"),
    (lambda: sphere_exact.poisson_mean([0.1, 0.2]), "w"),
    (lambda: sphere_exact.poisson_parameter([0.0, 1.0], [0.1, 0, 0], np.eye(2)), "V"),
    (lambda: bounds.spectral_gap(np.ones((2, 3))), "V"),
    (lambda: observables.cluster_times([0.0, 1.0, 2.0], np.stack([X3, X3]), X3[:2], 0.1),
     "tuned_points"),
    (lambda: circle_exact.wrapped_cauchy_density(X3, 0.5), "points"),
    (lambda: harmonic.zonal_factor(np.ones((2, 3))), "A"),
]


@pytest.mark.parametrize("call, word", WRONG_SHAPE)
def test_wrong_shapes_are_value_errors_naming_the_parameter(call, word):
    with pytest.raises(ValueError, match=named(word)):
        call()


OUT_OF_RANGE = [
    (lambda: uniform_growth_rate(0, 1.0, 3), "l"),
    (lambda: uniform_growth_rate(1, -1.0, 3), "beta"),
    (lambda: uniform_growth_rate(1, 1.0, 1), "d"),
    (lambda: circle_exact.kuramoto_order_parameter(1.0, 1.0), "r0"),
    (lambda: circle_exact.kuramoto_order_parameter(-1.0, 0.5), "t"),
    (lambda: circle_exact.sample_wrapped_cauchy(0, 0.5), "n"),
    (lambda: circle_clusters.count_clusters_circle(measure(d=2), level=0.0), "level"),
    (lambda: circle_clusters.count_clusters_circle(measure(d=2), min_mass=-0.1), "min_mass"),
    (lambda: circle_clusters.count_clusters_circle(measure(d=3)), "mu"),
    (lambda: kernels.interaction_energy(X3, -W, M3), "weights"),
    (lambda: kernels.interaction_energy(2 * X3, W, M3), "points"),
    (lambda: harmonic.harmonic_degree(-1.0), "kappa"),
    (lambda: harmonic.kernel_matrix(np.eye(3), 1.0, harmonic.MAX_DEGREE + 1), "L"),
    (lambda: harmonic.fixed_points_field(M3, X3, X3, field="fft"), "field"),
    (lambda: harmonic.sphere_harmonics(2 * X3, 4), "points"),
    (lambda: sphere_exact.poisson_density(X3, [0.6, 0.8, 0.0]), "w"),
    (lambda: sphere_exact.poisson_parameter([1.0, 0.5], [0.1, 0, 0], np.eye(3)), "times"),
    (lambda: bounds.gronwall_bound(M3, 0.1, -1.0), "t"),
    (lambda: bounds.dirac_angle(1.0, 2.0, 0.1), "theta0"),
    (lambda: observables.reference_clusters(X3, 0.0), "delta"),
    (lambda: observables.cluster_times([0.0, 1.0], np.stack([X3, X3]), X3[:2], -0.1),
     "delta"),
    (lambda: growth.growth_rate_sphere(M3, 1, n_lat=24, amplitude=0.5), "amplitude"),
    (lambda: growth.growth_rate_circle(Attention(d=2), 1, T=0.0), "T"),
    (lambda: growth.growth_rate_circle(M3, 1), "model"),
    (lambda: check_density(uniform_s2, 1), "d"),
]


@pytest.mark.parametrize("call, word", OUT_OF_RANGE)
def test_values_out_of_range_are_value_errors_naming_the_parameter(call, word):
    with pytest.raises(ValueError, match=named(word)):
        call()


BEYOND_MEMORY = [
    (lambda: harmonic.sphere_harmonics(X3, 10**6), "L"),
    (lambda: harmonic.gauss_grid(10**6), "L"),
    (lambda: harmonic.gauss_grid(0, (10**6, 2 * 10**6)), "shape"),
    (lambda: harmonic.real_degrees(10**6), "L"),
    (lambda: circle_clusters.count_clusters_circle(measure(d=2), bins=10**12), "bins"),
    (lambda: circle_exact.sample_wrapped_cauchy(10**12, 0.5), "n"),
    (lambda: growth.growth_rate_circle(Attention(d=2), 1, n=10**12), "n"),
    (lambda: growth.growth_rate_sphere(M3, 1, n_lat=10**6), "n_lat"),
    (lambda: sobolev.truncation_bound(3, terms=10**12), "terms"),
]


@pytest.mark.parametrize("call, word", BEYOND_MEMORY)
def test_sizes_beyond_memory_are_memory_errors_before_allocating(call, word):
    with pytest.raises(MemoryError, match=named(word)) as err:
        call()
    assert "GiB" in str(err.value)


def test_checked_functions_still_give_their_exact_values():
    """The checks change no value: the exact solutions against their closed forms."""
    r0 = 0.3
    r = circle_exact.kuramoto_order_parameter([0.0, 1.0], r0)
    assert r[0] == pytest.approx(r0, rel=1e-15)
    assert r[1] ** 2 == pytest.approx(r0**2 * math.e / (1 - r0**2 + r0**2 * math.e), rel=1e-14)
    # P_0 is the uniform density, and m(w) ~ 4 |w| / 3 for small w (module docstring)
    assert np.allclose(sphere_exact.poisson_density(X3, [0.0, 0.0, 0.0]), 1 / (4 * math.pi))
    m = sphere_exact.poisson_mean([1e-4, 0.0, 0.0])
    assert m[0] == pytest.approx(4e-4 / 3, rel=1e-7)
    # beta = 0: the l = 1 growth rate is (d - 1) / d
    assert uniform_growth_rate(1, 0.0, 3) == pytest.approx(2 / 3, rel=1e-15)


def test_fixed_point_evaluators_refuse_non_finite_weights():
    """The DG solver's evaluators (tables, zonal transforms) get their weights at every stage:
    a NaN is an error naming them, not a ducc0 assertion or a silent NaN field."""
    model = Attention(beta=1.0, d=3)
    tables = harmonic.HarmonicTables(X3, X3, model)
    transforms = harmonic.ZonalTransforms(X3, X3, model)
    for evaluate in (tables, transforms):
        assert np.all(np.isfinite(evaluate(W)))
        with pytest.raises(ValueError, match=named("weights")):
            evaluate(with_nan(W))
    with pytest.raises(TypeError, match=named("model")):
        collapse_reason("model", "particles")


@pytest.mark.parametrize("d, method, resolution, own, foreign", [
    (3, "spectral", 8, "method='fem'", "method='fv'"),
    (2, "spectral", 16, "method='fv'", "method='fem'"),
    (2, "fv", 32, "lower the resolution", "increase resolution"),
    (3, "fem", 1, "lower the resolution", "increase resolution"),
])
def test_a_collapsed_run_names_the_remedy_of_its_own_geometry(d, method, resolution, own,
                                                              foreign):
    """A run stopped by its step budget (a tiny max_steps against a long T) says why with the
    remedy of the solver that ran: on S^2 the spectral solver points to fem, never to fv."""
    model = Attention(beta=2.0, d=d)
    rho0 = (lambda p: np.full(len(p), 1 / (4 * np.pi))) if d == 3 else \
        (lambda p: np.full(len(p), 1 / (2 * np.pi)))
    with pytest.raises(StepCollapseError, match="max_steps") as err:
        solve(model, lambda p: rho0(p) * (1 + 0.1 * p[:, 0]), 1e4, method=method,
              resolution=resolution, times=[0.0, 1e4], max_steps=30, progress=False)
    message = str(err.value)
    assert own in message and foreign not in message, message
    scale = "||V|| = 1" if method in ("fv", "fem") else "beta ||Q^T K|| = 2"
    assert scale in message
