import warnings

import numpy as np
import pytest

from continuum import Attention, Measure, UnderResolved, solve
from continuum.circle.field import circle_velocity, fourier_field
from continuum.circle.fv import FVOperator, fv_rhs, interface_speed
from continuum.circle.grid import grid
from continuum.geometry import uniform_points
from continuum.kernels import attention_field
from continuum.model import random_model
from continuum.resolution import UnderResolvedWarning
from validation import (
    circle_conservation,
    circle_growth_rates,
    circle_kuramoto,
    circle_metastability,
    circle_particles,
    circle_spectral_vs_fv,
)


def rotation_model(beta, normalized, seed=0, c=1.3, alpha=0.4):
    rng = np.random.default_rng(seed)
    A = c * np.array([[np.cos(alpha), -np.sin(alpha)], [np.sin(alpha), np.cos(alpha)]])
    return Attention(beta=beta, d=2, K=A, V=rng.standard_normal((2, 2)), normalized=normalized)


def smooth_rho(p):
    theta = np.arctan2(p[:, 1], p[:, 0])
    return (1 + 0.5 * np.cos(theta - 0.3) + 0.3 * np.sin(2 * theta)) / (2 * np.pi)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("beta", [0.0, 1.0, 6.0])
def test_fft_and_kernel_paths_agree(beta, normalized):
    model = rotation_model(beta, normalized)
    n = 96
    theta = grid(n)
    masses = smooth_rho(np.stack([np.cos(theta), np.sin(theta)], 1)) * 2 * np.pi / n
    v_fft, used_fft = circle_velocity(model, theta, masses, "fft")
    v_ker, used_ker = circle_velocity(model, theta, masses, "kernel")
    assert (used_fft, used_ker) == ("fft", "kernel")
    assert np.abs(v_fft - v_ker).max() <= 1e-12 * np.abs(v_ker).max()
    # the FV interface speed (shifted kernel) too
    centres = grid(n, 0.5)
    rho = masses / (2 * np.pi / n)
    args = (model, rho, centres, 2 * np.pi / n)
    a, b = interface_speed(*args, "fft")[0], interface_speed(*args, "kernel")[0]
    assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()


@pytest.mark.parametrize("path", ["fft", "kernel"])
@pytest.mark.parametrize("limiter", ["mc", "minmod"])
@pytest.mark.parametrize("normalized", [True, False])
def test_compiled_fv_operator_equals_plain_reference(normalized, limiter, path):
    """FVOperator (what solve_fv runs) computes the formula of fv_rhs: the interface speeds
    agree to the FFT round-off tolerance of the test above, 1e-12 relative, and the flux
    divergence to that tolerance carried through F = v rho^{E/W} (edge values <= 2 rho_max)
    and the division by h."""
    model = rotation_model(2.0, normalized)
    n = 256
    h = 2 * np.pi / n
    centres = grid(n, 0.5)
    rho = smooth_rho(np.stack([np.cos(centres), np.sin(centres)], 1))
    rho[40:60] = 0.0  # a vacuum region: the limiter's clipping branches are exercised
    op = FVOperator(model, n, limiter, path)
    ref, ref_vmax = fv_rhs(model, rho, centres, h, limiter, path)
    got, vmax = op(rho)
    v_ref = interface_speed(model, rho, centres, h, path)[0]
    tol_v = 1e-12 * np.abs(v_ref).max()
    assert np.abs(op.speed(rho) - v_ref).max() <= tol_v
    assert abs(vmax - ref_vmax) <= tol_v
    assert np.abs(got - ref).max() <= 2 * tol_v * 2 * rho.max() / h


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("beta", [0.0, 1.0, 9.0])
def test_fourier_expansion_field_matches_direct_kernel(beta, normalized):
    model = rotation_model(beta / 1.3, normalized, seed=2)
    rng = np.random.default_rng(1)
    x = uniform_points(700, 2, rng)
    w = rng.random(700)
    w /= w.sum()
    ref = attention_field(x, x, w, model, method="direct")
    got = fourier_field(x, x, w, model)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize("method, n", [("spectral", 128), ("fv", 128)])
@pytest.mark.parametrize("normalized", [True, False])
def test_mass_conservation_and_solution_interface(method, n, normalized):
    model = random_model(2, normalized=normalized, seed=3)
    # the spectral run is under-resolved from t = 1.5 (tail 4.5e-6): kept, flagged, for its mass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnderResolvedWarning)
        sol = solve(model, smooth_rho, 2.0, method=method, resolution=n,
                    times=np.linspace(0, 2, 5), on_unresolved="warn")
    assert sol.info["field"] == "kernel"
    np.testing.assert_allclose(sol.diagnostics["mass"], 1.0, rtol=0, atol=1e-12)
    assert sol.densities.shape == (5, n) and sol.density(4).shape == (n,)
    mu = sol.measure(4)
    assert isinstance(mu, Measure) and abs(mu.weights.sum() - 1) < 1e-14
    assert len(sol) == 5 and sol.times[-1] == 2.0


def test_fv_positivity_and_cluster_warning_in_clustering_regime():
    model = Attention(beta=9.0, d=2)  # SA: tokens collapse into clusters
    rng = np.random.default_rng(0)
    phases = rng.uniform(0, 2 * np.pi, 6)

    def rho0(p):
        theta = np.arctan2(p[:, 1], p[:, 0])
        return (1 + 0.2 * sum(np.cos(k * theta + phases[k - 1]) for k in range(1, 7)) / 6) / (
            2 * np.pi)

    with pytest.warns(UnderResolvedWarning, match="cluster is narrower"):
        sol = solve(model, rho0, 40.0, method="fv", resolution=128,
                    times=np.linspace(0, 40, 41), on_unresolved="warn")
    assert sol.densities.min() >= 0.0
    assert "under_resolved_from" in sol.info
    np.testing.assert_allclose(sol.diagnostics["mass"], 1.0, rtol=0, atol=1e-12)
    cell_mass = sol.density(-1) * 2 * np.pi / 128
    assert cell_mass.max() > 0.1  # one cell holds > 12 x its uniform share 1/128


def test_spectral_warns_when_unresolved_and_fails_clearly():
    model = Attention(beta=9.0, d=2)
    with pytest.warns(UnderResolvedWarning, match="spectral tail"):
        sol = solve(model, smooth_rho, 4.0, method="spectral", resolution=32,
                    times=np.linspace(0, 4, 9), on_unresolved="warn")
    t_flag = sol.info["under_resolved_from"]
    assert t_flag > 0
    # by default the same run stops at that saved time, keeping the partial Solution
    with pytest.raises(UnderResolved, match="resolution 32 is under-resolved") as err:
        solve(model, smooth_rho, 4.0, method="spectral", resolution=32,
              times=np.linspace(0, 4, 9))
    assert err.value.time == t_flag and err.value.solution.times[-1] == t_flag
    with pytest.raises(RuntimeError, match="no longer resolved"):  # kept on: the step collapses
        solve(model, smooth_rho, 15.0, method="spectral", resolution=32,
              times=np.linspace(0, 15, 16), on_unresolved="warn")


@pytest.mark.parametrize("method, n", [("spectral", 128), ("fv", 256)])
def test_usa_energy_non_decreasing(method, n):
    """USA, Q = K = V = I: dE/dt = int |X|^2 >= 0 while the density is resolved (the run
    concentrates fast: T = 1.5 keeps the spectral tail below 1e-6 at n = 128)."""
    model = Attention(beta=1.0, d=2, normalized=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an under-resolution warning would void the check
        sol = solve(model, smooth_rho, 1.5, method=method, resolution=n,
                    times=np.linspace(0, 1.5, 31))
    energy = sol.diagnostics["energy"]
    assert energy[-1] > energy[0]
    assert np.diff(energy).min() >= 0.0


def test_spectral_and_fv_agree_to_fv_error():
    """FV - spectral (resolved) shrinks at the FV order 2 on a smooth problem."""
    record = circle_spectral_vs_fv.main(resolutions=(64, 128, 256))
    assert record.passed, record.details


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(method="spectral", resolution=31), ValueError, "resolution"),
    (dict(method="fv", resolution=64, cfl=0.8), ValueError, "cfl"),
    (dict(method="fv", resolution=64, limiter="superbee"), ValueError, "limiter"),
    (dict(method="spectral", resolution=64, field="fft"), ValueError, "rotation"),
    (dict(method="finite-difference"), ValueError, "method"),
])
def test_bad_solver_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        solve(random_model(2, seed=3), smooth_rho, 1.0, **kwargs)


def test_bad_initial_density_and_dimension():
    model = Attention(beta=1.0, d=2)
    with pytest.raises(ValueError, match="integrates to 2"):
        solve(model, lambda p: 2 * smooth_rho(p), 1.0)
    with pytest.raises(ValueError, match="negative"):
        solve(model, lambda p: p[:, 0], 1.0, method="fv")
    with pytest.raises(ValueError, match="needs d = 2"):
        solve(Attention(beta=1.0, d=3), smooth_rho, 1.0, method="fv")
    with pytest.raises(ValueError, match="needs d = 2 .* or d = 3"):
        solve(Attention(beta=1.0, d=4), smooth_rho, 1.0, method="spectral")
    with pytest.raises(TypeError, match="callable"):
        solve(model, 3.0, 1.0)


def test_small_mass_mismatch_is_rescaled_and_recorded():
    model = Attention(beta=1.0, d=2)
    sol = solve(model, lambda p: 1.004 * smooth_rho(p), 0.5, method="fv", resolution=64,
                times=[0.0, 0.5])
    assert abs(sol.info["initial_rescaling"] - 1 / 1.004) < 1e-12
    np.testing.assert_allclose(sol.diagnostics["mass"], 1.0, atol=1e-13)


def test_kuramoto_case_spectral_exponential_and_fv_order_two():
    records = circle_kuramoto.main()
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]


def test_growth_rates_case_small():
    record = circle_growth_rates.main(betas=(1.0, 9.0), modes=(1, 4))
    assert record.passed, record.details


def test_particles_converge_to_continuum_like_inverse_sqrt_n():
    record = circle_particles.main(quick=True)
    assert record.passed, (record.measured, record.details)


@pytest.mark.slow
def test_metastable_clusters_match_fastest_mode():
    record = circle_metastability.main(quick=True)
    assert record.passed, record.parameters


def test_conservation_case():
    records = circle_conservation.main()
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]
