"""The spectral solver on S^2 (continuum.sphere.spectral) and the Poisson-kernel family
(continuum.sphere.exact)."""

import math
import warnings

import ducc0
import numpy as np
import pytest
from scipy.integrate import quad

from continuum import Attention, UnderResolved, solve
from continuum.kernels import attention_field
from continuum.linear import uniform_growth_rate
from continuum.resolution import UnderResolvedWarning
from continuum.sphere.exact import poisson_density, poisson_mean, poisson_parameter
from continuum.sphere.harmonic import from_real, real_degrees, to_real
from continuum.sphere.spectral import SphereSpectral, analyse, rotation_angles, synthesise

U = np.finfo(float).eps / 2  # unit round-off


def random_rotation(rng, improper=False):
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if improper else q


def values_at(coefficients, L, points):
    loc = np.stack([np.arccos(np.clip(points[:, 2], -1, 1)),
                    np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * np.pi)], -1)
    return ducc0.sht.synthesis_general(alm=from_real(coefficients, L)[None], spin=0, lmax=L,
                                       loc=loc, epsilon=1e-14)[0]


@pytest.mark.parametrize("improper", [False, True])
def test_rotation_angles_rotate_coefficients_as_f_of_R_transpose_x(improper):
    """rotate_alm with rotation_angles(R) (and the parity for det R < 0) gives f(R^T x)."""
    rng = np.random.default_rng(3)
    L = 7
    a = rng.standard_normal((L + 1) ** 2)
    R = random_rotation(rng, improper)
    psi, theta, phi, flip = rotation_angles(R)
    assert flip == improper
    alm = ducc0.sht.rotate_alm(from_real(a, L), L, psi, theta, phi)
    if flip:
        alm = alm * np.where(np.concatenate([np.arange(m, L + 1) for m in range(L + 1)]) % 2,
                             -1, 1)
    x = rng.standard_normal((20, 3))
    x /= np.linalg.norm(x, axis=1)[:, None]
    scale = np.abs(a).sum() / math.sqrt(4 * math.pi) * (2 * L + 1)  # bound on |f|
    assert np.max(np.abs(values_at(to_real(alm, L), L, x) - values_at(a, L, x @ R))) \
        < 1e-12 * scale


def test_rotation_angles_at_the_gimbal_poles():
    for R in (np.diag([1.0, 1.0, 1.0]), np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, -1.0, -1.0])):
        psi, theta, phi, _ = rotation_angles(R)
        c, s = math.cos, math.sin
        Rz = lambda a: np.array([[c(a), -s(a), 0], [s(a), c(a), 0], [0, 0, 1]])  # noqa: E731
        Ry = lambda a: np.array([[c(a), 0, s(a)], [0, 1, 0], [-s(a), 0, c(a)]])  # noqa: E731
        assert np.allclose(Rz(phi) @ Ry(theta) @ Rz(psi), R, atol=1e-15)


def test_analysis_inverts_synthesis():
    rng = np.random.default_rng(0)
    L = 10
    a = rng.standard_normal((L + 1) ** 2)
    back = analyse(synthesise(a, L, L + 1, 2 * L + 2), L, L + 1, 2 * L + 2)
    assert np.max(np.abs(back - a)) < 100 * U * np.abs(a).sum()


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("improper", [False, True])
def test_funk_hecke_field_equals_the_direct_sum_on_the_nodes(normalized, improper):
    """The zonal path (rotation + multipliers + spin-1 synthesis) against the direct sum with
    the quadrature measure: the same integral while the kernel's degree (20 at kappa = 2) is
    within the quadrature's exactness 2L + 3; round-off of an n-term sum of terms within the
    dynamic range e^{2 kappa}: n u e^{2 kappa} relative to the field's scale."""
    rng = np.random.default_rng(5)
    L, c = 12, 2.0
    R = random_rotation(rng, improper)
    V = np.eye(3) + 0.3 * rng.standard_normal((3, 3))
    model = Attention(beta=1.0, d=3, Q=np.eye(3), K=c * R, V=V, normalized=normalized)
    a = np.zeros((L + 1) ** 2)
    a[0] = 1 / math.sqrt(4 * math.pi)
    a[1:] = 0.02 * rng.standard_normal(a.size - 1) / (1 + real_degrees(L)[1:]) ** 2
    disc = SphereSpectral(model, L, field="funk-hecke")
    grid = disc.grid
    rho = synthesise(a, L, *grid.shape)
    assert rho.min() > 0
    got = disc.field_at_nodes(from_real(a, L), rho)
    ref = attention_field(grid.points, grid.points, rho * grid.weights, model, method="direct")
    scale = np.abs(ref).max()
    assert np.max(np.abs(got - ref)) < len(rho) * U * math.exp(2 * c) * scale


def test_uniform_growth_rates_to_1e8():
    """A sectoral perturbation eps Re Y_ll of the uniform state: its quadratic terms feed only
    m = 0 and 2l, so the mode's amplitude grows like e^{lambda t} (1 + O(eps^2))."""
    L, eps = 6, 1e-5
    for normalized in (True, False):
        for beta in (1.0, 4.0):
            model = Attention(beta=beta, d=3, normalized=normalized)
            for l in (1, 2, 3):
                lam = uniform_growth_rate(l, beta, 3, normalized)
                T = min(1 / lam, 2.0)

                def rho0(p, l=l):
                    s = np.hypot(p[:, 0], p[:, 1])
                    return (1 + eps * s**l * np.cos(l * np.arctan2(p[:, 1], p[:, 0]))) \
                        / (4 * np.pi)

                sol = solve(model, rho0, T, method="spectral", resolution=L, times=[0, T],
                            rtol=1e-13, atol=1e-16)
                a = sol.info["coefficients"]
                idx = (L + 1) + sum(L + 1 - m for m in range(1, l))  # cosine (l, m = l)
                got = math.log(a[1, idx] / a[0, idx]) / T
                assert abs(got / lam - 1) < 1e-8, (normalized, beta, l, got, lam)


def test_poisson_mean_against_quadrature():
    for s in (1e-3, 0.1, 0.49, 0.5, 0.8):
        q = quad(lambda t: 0.5 * t * (1 - s * s) ** 2 / (1 - 2 * s * t + s * s) ** 2, -1, 1,
                 epsabs=1e-15, limit=200)[0]
        w = s * np.array([0.6, 0.0, 0.8])
        assert np.linalg.norm(poisson_mean(w) - q * w / s) < 1e-12 * q


def test_poisson_family_is_exact_for_particles():
    """Particles at beta = 0 (dx/dt = P_x^perp V m) started from a sample of P_w0: their
    mean at time T matches m(w(T)) within the Monte Carlo error of the sample's mean, and
    a particle flow of the exact law preserves it (same check at t = 0)."""
    from particles import sample, simulate

    V = np.array([[1.0, 0.3, 0.0], [-0.2, 0.6, 0.1], [0.05, 0.0, -0.4]])
    w0 = np.array([0.2, -0.3, 0.25])
    T, n = 1.0, 40_000
    x0 = sample(lambda p: poisson_density(p, w0), n=n, d=3, seed=1)
    traj = simulate(Attention(beta=0.0, d=3, V=V), x0, T, times=[0, T], dt=0.02)
    w_T = poisson_parameter([0, T], w0, V)[1]
    for i, w in ((0, w0), (1, w_T)):
        mean = traj.measure(i).points.T @ traj.measure(i).weights
        # standard error of a mean of n unit vectors: at most 1/sqrt(n) per component
        assert np.max(np.abs(mean - poisson_mean(w))) < 5 / math.sqrt(n)


def test_poisson_family_spectral_to_1e9():
    V = np.array([[1.0, 0.3, 0.0], [-0.2, 0.6, 0.1], [0.05, 0.0, -0.4]])
    w0 = np.array([0.15, -0.2, 0.15])
    T = 2.0
    times = np.linspace(0, T, 3)
    w = poisson_parameter(times, w0, V)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resolved: no tail warning
        sol = solve(Attention(beta=0.0, d=3, V=V), lambda p: poisson_density(p, w0), T,
                    method="spectral", resolution=48, times=times, rtol=1e-13, atol=1e-15)
    for i in range(len(times)):
        exact = poisson_density(sol.points, w[i])
        assert np.max(np.abs(sol.density(i) - exact)) <= 1e-9 * exact.max()
    # mass: the l = 0 right-hand side is exactly zero
    assert np.max(np.abs(sol.diagnostics["mass"] - 1)) < 100 * U


def test_general_kernel_paths_agree_and_conserve_mass():
    """Random Q, K, V: the transform path ("harmonic") and the direct sum give the same
    solution to the expansion's accuracy; mass is conserved to round-off."""
    rng = np.random.default_rng(1)
    Q, K, V = (np.eye(3) + 0.3 * rng.standard_normal((3, 3)) for _ in range(3))
    model = Attention(beta=1.0, d=3, Q=Q, K=K, V=V)
    w0 = np.array([0.2, 0.15, -0.2])
    run = {f: solve(model, lambda p: poisson_density(p, w0), 0.5, method="spectral",
                    resolution=12, times=[0, 0.25, 0.5], field=f, rtol=1e-12, atol=1e-14,
                    tail_tol=1.0)
           for f in ("direct", "harmonic")}
    a, b = (run[f].info["coefficients"] for f in ("direct", "harmonic"))
    # the expansion's relative field error is below TRUSTED_BOUND = 1e-10 where kept; the
    # integrator (rtol 1e-12) turns it into an error of the same size in the coefficients
    assert np.max(np.abs(a - b)) < 1e-9 * np.abs(a).max()
    for sol in run.values():
        assert np.max(np.abs(sol.diagnostics["mass"] - 1)) < 100 * U


def test_measure_uses_clipped_nodal_values_and_positive_weights():
    model = Attention(beta=1.0, d=3)
    sol = solve(model, lambda p: poisson_density(p, [0.1, 0.0, 0.3]), 0.1, method="spectral",
                resolution=8, times=[0, 0.1], tail_tol=1.0)
    mu = sol.measure(1)
    assert np.all(sol.quadrature > 0) and np.all(mu.weights >= 0)
    assert math.isclose(mu.weights.sum(), 1.0, rel_tol=1e-14)
    assert math.isclose(sol.quadrature.sum(), 4 * math.pi, rel_tol=1e-14)


def test_tail_flags_the_run_when_under_resolved():
    model = Attention(beta=1.0, d=3)
    rho0 = lambda p: poisson_density(p, [0.0, 0.0, 0.8])  # noqa: E731
    with pytest.warns(UnderResolvedWarning, match="spectral tail"):
        sol = solve(model, rho0, 0.1, method="spectral", resolution=8, times=[0, 0.1],
                    on_unresolved="warn")
    assert sol.info["under_resolved_from"] == 0.0 and len(sol.times) == 2
    with pytest.raises(UnderResolved, match="band limit"):  # the default: stop at t = 0
        solve(model, rho0, 0.1, method="spectral", resolution=8, times=[0, 0.1])


@pytest.mark.parametrize("kwargs, match", [
    ({"resolution": 1}, "resolution"),
    ({"resolution": 8.5}, "resolution"),
    ({"resolution": 8, "field": "fft"}, "field"),
    ({"resolution": 8, "rtol": 0.0}, "rtol"),
])
def test_bad_input_names_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        solve(Attention(beta=1.0, d=3), lambda p: np.full(len(p), 1 / (4 * np.pi)), 1.0,
              method="spectral", **kwargs)


def test_refuses_a_band_limit_too_small_for_the_kernel_and_funk_hecke_for_general_A():
    rng = np.random.default_rng(0)
    general = Attention(beta=6.0, d=3, K=np.eye(3) + 0.5 * rng.standard_normal((3, 3)))
    uniform = lambda p: np.full(len(p), 1 / (4 * np.pi))  # noqa: E731
    with pytest.raises(ValueError, match="resolution L = 4 is too small"):
        solve(general, uniform, 1.0, method="spectral", resolution=4)
    with pytest.raises(ValueError, match="funk-hecke"):
        solve(general, uniform, 1.0, method="spectral", resolution=8, field="funk-hecke")


def test_a_study_runs_the_spectral_sphere_backend(tmp_path):
    """`meanfield run` with backend kind "spectral" and d = 3 (forgetting.study)."""
    import copy

    import xarray as xr

    from forgetting.config import DEFAULT_STUDY, validate_config
    from forgetting.study import run_study

    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["study"].update(name="s2", output=str(tmp_path / "out"), workers=1)
    cfg["model"].update(d=3, V_diag=[1.0, 0.8, 0.6])
    # resolved to T = 0.5 at L = 24 (tail 4e-9): a flagged point would stop the study
    cfg["backend"].update(kinds=["spectral"], resolution=24)
    cfg["time"].update(T=0.5, n_times=3)
    cfg["sweep"].update(values=[0.0, 0.4], delta=0.1)
    summary = run_study(validate_config(cfg), progress=False)
    with xr.open_dataset(summary["files"]["data"], engine="h5netcdf") as ds:
        D = ds["deviation_w2_spectral"].values
    assert np.all(D[0] == 0.0) and D[1, -1] > D[1, 1] > 0.0


def test_clusters_beyond_the_band_limit_stop_with_an_error_naming_the_resolution():
    """SA beta = 9 from a concentrated start: the cluster outgrows L = 8, DOP853's step
    collapses; kept on (on_unresolved='warn'), it raises, naming L and the remedy."""
    from continuum.geometry import von_mises_density

    rho0 = lambda p: von_mises_density(p, np.array([0.0, 0.0, 1.0]), 4.0)  # noqa: E731
    with pytest.raises(RuntimeError, match="L=8.*larger band limit"):
        solve(Attention(beta=9.0, d=3), rho0, 30.0, method="spectral", resolution=8,
              times=np.linspace(0, 30, 31), on_unresolved="warn")


def test_usa_scale_collapse_is_named_not_crawled():
    """USA beta = 20: the field carries e^20, DOP853's step collapses; the step guard stops
    the run with the USA reason instead of taking ~1e9 steps."""
    from continuum.timestep import StepCollapseError

    with pytest.raises(StepCollapseError, match="USA"):
        solve(Attention(beta=20.0, d=3, normalized=False),
              lambda p: poisson_density(p, [0.0, 0.0, 0.3]), 1.0, method="spectral",
              resolution=8, times=[0, 1.0], tail_tol=1.0)


@pytest.mark.parametrize("kwargs, error", [
    ({"rtol": "1e-8"}, TypeError), ({"atol": -1.0}, ValueError),
    ({"max_steps": 0}, ValueError), ({"progress": "yes"}, TypeError),
    ({"resolution": True}, TypeError),
])
def test_options_are_checked_and_named(kwargs, error):
    name = next(iter(kwargs))
    options = {"resolution": 8, **kwargs}
    with pytest.raises(error, match=name):
        solve(Attention(beta=1.0, d=3), lambda p: np.full(len(p), 1 / (4 * np.pi)), 1.0,
              method="spectral", **options)
