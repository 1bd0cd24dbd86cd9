"""Under-resolution (issue 22): a run its solver knows to be under-resolved raises
``continuum.UnderResolved`` with on_unresolved="raise", or warns and keeps the flag."""

import warnings

import numpy as np
import pytest

from continuum import Attention, UnderResolved, solve
from continuum.geometry import von_mises_density
from continuum.resolution import UnderResolvedWarning
from continuum.solve import check_initial


def _clustering_fv(**kw):
    # V = I, beta = 1, SA: a von Mises start collapses to a cluster narrower than a cell of
    # the 16-cell grid well before T = 20 (the FV solver's cell indicator)
    model = Attention(beta=1.0, d=2)
    rho0 = lambda p: von_mises_density(p, np.array([np.cos(0.3), np.sin(0.3)]), 1.0)  # noqa: E731
    return solve(model, rho0, 20.0, method="fv", resolution=16, times=np.linspace(0, 20, 5),
                 progress=False, **kw)


def test_under_resolved_raises_naming_resolution_and_time():
    with pytest.raises(UnderResolved, match="resolution 16") as err:
        _clustering_fv(on_unresolved="raise")
    assert err.value.method == "fv" and err.value.resolution == 16
    assert 0 < err.value.time <= 20 and err.value.solution is not None


def test_under_resolved_warn_keeps_the_flag():
    with pytest.warns(UnderResolvedWarning):
        sol = _clustering_fv(on_unresolved="warn")
    assert 0 < sol.info["under_resolved_from"] <= 20


def test_on_unresolved_is_checked():
    with pytest.raises(ValueError, match="on_unresolved"):
        _clustering_fv(on_unresolved="ignore")


@pytest.mark.parametrize("method, d, resolution", [("fv", 2, 16), ("spectral", 2, 16),
                                                   ("spectral", 3, 8)])
def test_check_initial_refuses_what_the_solver_refuses(method, d, resolution):
    with pytest.raises(ValueError, match="rho0"):
        check_initial(method, d, resolution, lambda p: np.full(len(p), 3.0))
    assert check_initial(method, d, resolution,
                         lambda p: np.full(len(p), 1 / (2 * np.pi if d == 2 else 4 * np.pi))) \
        == resolution


# ------------------------------------------------------------------ indicators, each solver
# The exact solutions at beta = 0 (Kuramoto on S^1, the Poisson family on S^2) concentrate at
# a known rate: 1 - r(t) ~ C e^{-t} (r' = r (1 - r^2) / 2), so the time at which the *exact*
# cell masses trip the cluster indicator is computable, and the run's flag must come at or
# after it (a conservative upwind scheme smears, it does not sharpen a cluster beyond the
# exact one) and within 2 time units of it: by then the exact cluster is e^2 = 7.4 times
# narrower than the width that trips the indicator. Measured lags: FV 0.75 to 1.6 (n = 16 to
# 128), DG 1.1 (levels 2 and 3).
LAG = 2.0


def _kuramoto(r0=0.3, psi=0.5):
    from continuum.circle.exact import wrapped_cauchy_density
    return Attention(beta=0.0, d=2), lambda p: wrapped_cauchy_density(p, r0, psi)  # noqa: E731


def _exact_fv_trigger(times, n, r0=0.3, psi=0.5):
    from continuum.circle.exact import kuramoto_order_parameter, wrapped_cauchy_density
    from continuum.circle.fv import circle_neighbours
    from continuum.resolution import cluster_unresolved

    sub = 200  # exact cell masses by a 200-point midpoint rule per cell
    theta = (2 * np.pi / n) * (np.arange(n)[:, None] + (np.arange(sub) + 0.5)[None, :] / sub)
    pts = np.stack([np.cos(theta.ravel()), np.sin(theta.ravel())], 1)
    for t in times:
        r = float(kuramoto_order_parameter(t, r0))
        masses = wrapped_cauchy_density(pts, r, psi).reshape(n, sub).mean(1) * 2 * np.pi / n
        if cluster_unresolved(masses, circle_neighbours(n), 0.9):
            return t
    return None


def test_fv_flag_resolved_case_and_time_against_the_exact_cluster():
    model, rho0 = _kuramoto()
    quiet = solve(model, rho0, 3.0, method="fv", resolution=32, progress=False)  # raise mode
    assert "under_resolved_from" not in quiet.info
    times = np.linspace(0, 16, 161)
    t_exact = _exact_fv_trigger(times, 32)
    with pytest.raises(UnderResolved, match="narrower than a cell") as err:
        solve(model, rho0, 16.0, method="fv", resolution=32, times=times, progress=False)
    assert t_exact <= err.value.time <= t_exact + LAG
    assert "finer grid" in err.value.remedy and "resolution='auto'" in err.value.remedy


def test_spectral_circle_flag_time_is_the_exact_tail_crossing():
    """Wrapped Cauchy: |rho_k| / |rho_0| = r^k exactly, r^k + r^(n-k) on n nodes (aliasing),
    so the tail max_{k >= n/3} crosses tail_tol at a computable time."""
    from continuum.circle.exact import kuramoto_order_parameter

    model, rho0 = _kuramoto()
    n, times = 64, np.linspace(0, 8, 81)
    k = np.arange(n // 3, n // 2 + 1)
    r = kuramoto_order_parameter(times, 0.3)[:, None]
    tails = (r**k + r ** (n - k)).max(axis=1)
    predicted = times[np.argmax(tails > 1e-6)]
    quiet = solve(model, rho0, 1.0, method="spectral", resolution=n, progress=False)
    assert "under_resolved_from" not in quiet.info
    with pytest.raises(UnderResolved, match="spectral tail") as err:
        solve(model, rho0, 8.0, method="spectral", resolution=n, times=times, progress=False)
    # the discrete tail equals the exact one to DOP853's error: same saved time, or the next
    # one when the crossing falls within rtol of a saved time
    assert err.value.time in (predicted, predicted + 0.1)
    assert "more nodes" in err.value.remedy and "method='fv'" in err.value.remedy


def test_spectral_sphere_issue_case_stops_soon_with_the_partial_solution():
    """Issue 22's S^2 case (SA beta = 1, V = diag(1, 0.8, 0.8), von Mises kappa = 1, default
    L = 32, T = 30): the tail passes 1e-6 early; raising stops there instead of integrating to
    T = 30 (where the warned run used to return densities down to -8.19)."""
    from continuum.geometry import von_mises_density

    model = Attention(beta=1.0, d=3, V=np.diag([1.0, 0.8, 0.8]))
    rho0 = lambda p: von_mises_density(p, np.array([0.3, 0.2, 0.93]), 1.0)  # noqa: E731
    times = np.linspace(0, 30, 61)
    with pytest.raises(UnderResolved, match="band limit") as err:
        solve(model, rho0, 30.0, method="spectral", times=times, progress=False)
    partial = err.value.solution
    assert 1.0 <= err.value.time <= 3.0 and partial.times[-1] == err.value.time
    assert err.value.resolution == 32 and "method='fem'" in err.value.remedy
    assert partial.info["stopped_at"] == err.value.time and len(partial) < len(times)
    resolved = solve(model, rho0, 1.0, method="spectral", times=[0.0, 0.5, 1.0], progress=False)
    assert resolved.densities.min() > 0


def test_negative_spectral_density_is_flagged_where_the_tail_is_not():
    """A hemisphere indicator density: its projection's tail is about 0.025 at L = 32, but
    its Gibbs undershoot is about 9% of the jump: with tail_tol = 0.06 only the negativity
    indicator (min rho < -tail_tol max rho) can fire, at t = 0."""
    from continuum.resolution import negative_density, spectral_indicator

    hemisphere = lambda p: np.where(p[:, 2] > 0, 1 / (2 * np.pi), 0.0)  # noqa: E731
    with pytest.raises(UnderResolved, match="negative at the nodes") as err:
        check_initial("spectral", 3, 32, hemisphere, tail_tol=0.06)
    assert err.value.time == 0
    assert negative_density(np.array([1.0, 0.5, -1e-9]), 1e-6) == ""  # round-off, time error
    assert "negative" in negative_density(np.array([1.0, 0.5, -1e-3]), 1e-6)
    assert "tail" in spectral_indicator(np.ones(3), 1e-5, 1e-6)


def _fem_poisson(level, T, times):
    from continuum.sphere.exact import poisson_density

    w0 = np.array([0.1, 0.2, 0.3])
    return solve(Attention(beta=0.0, d=3), lambda p: poisson_density(p, w0), T, method="fem",
                 resolution=level, times=times, progress=False)


def _exact_dg_trigger(times, level):
    from continuum.resolution import cluster_unresolved
    from continuum.sphere.dg import cell_neighbours
    from continuum.sphere.exact import poisson_density, poisson_parameter
    from continuum.sphere.icosphere import icosphere

    x, tri = icosphere(level)
    k = 12  # exact cell masses: 78 interior points of a barycentric subdivision per triangle
    a, b = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    keep = a + b < k
    bary = np.stack([(a[keep] + 1 / 3) / k, (b[keep] + 1 / 3) / k], 1)
    P = x[tri]
    pts = P[:, :1] + bary[None, :, :1] * (P[:, 1:2] - P[:, :1]) \
        + bary[None, :, 1:] * (P[:, 2:3] - P[:, :1])
    pts /= np.linalg.norm(pts, axis=2, keepdims=True)
    area = 0.5 * np.linalg.norm(np.cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0]), axis=1)
    nb = cell_neighbours(level)
    for t, w in zip(times, poisson_parameter(times, np.array([0.1, 0.2, 0.3]), np.eye(3))):
        masses = poisson_density(pts.reshape(-1, 3), w).reshape(len(tri), -1).mean(1) * area
        if cluster_unresolved(masses, nb, 0.9):
            return t
    return None


def test_dg_cluster_indicator_resolved_case_and_time_against_the_exact_cluster():
    times = np.linspace(0, 10, 41)
    quiet = _fem_poisson(2, 2.0, np.linspace(0, 2, 5))
    assert "under_resolved_from" not in quiet.info
    t_exact = _exact_dg_trigger(times, 2)
    with pytest.raises(UnderResolved, match="narrower than a cell") as err:
        _fem_poisson(2, 10.0, times)
    assert t_exact <= err.value.time <= t_exact + LAG
    assert err.value.method == "fem" and "finer grid" in err.value.remedy


@pytest.mark.parametrize("method", ["fv", "spectral"])
def test_warn_mode_emits_one_under_resolved_warning_and_runs_to_T(method):
    model, rho0 = _kuramoto()
    times = np.linspace(0, 12, 25)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = solve(model, rho0, 12.0, method=method, resolution=32, times=times,
                    progress=False, on_unresolved="warn")
    assert [w.category for w in caught] == [UnderResolvedWarning]
    assert sol.times[-1] == 12.0 and "stopped_at" not in sol.info
    with pytest.raises(UnderResolved) as err:  # raising stops at the flag: fewer steps
        solve(model, rho0, 12.0, method=method, resolution=32, times=times, progress=False)
    key = "steps" if method == "fv" else "nfev"
    assert err.value.solution.info[key] < sol.info[key]
    assert err.value.time == sol.info["under_resolved_from"]


# ------------------------------------------------------------------ initial densities
@pytest.mark.parametrize("method, d, resolution, kappa", [
    ("fv", 2, 16, 2000.0), ("fv", 2, 16, 60.0), ("spectral", 2, 16, 2000.0),
    ("spectral", 3, 8, 3000.0), ("fem", 3, 1, 3000.0)])
def test_a_density_too_concentrated_for_the_grid_is_under_resolved_at_time_zero(
        method, d, resolution, kappa):
    """A von Mises start is a probability density (the refined quadrature integrates it to
    1), but the coarse grid misses its spike: UnderResolved at t = 0 naming the resolution,
    from check_initial (before any run) and from solve alike."""
    mean = np.eye(d)[-1]
    rho0 = lambda p: von_mises_density(p, mean, kappa)  # noqa: E731
    for call in (lambda: check_initial(method, d, resolution, rho0),
                 lambda: solve(Attention(beta=1.0, d=d), rho0, 1.0, method=method,
                               resolution=resolution, progress=False)):
        with pytest.raises(UnderResolved, match=f"resolution {resolution} cannot hold the "
                                                "initial density.*too concentrated") as err:
            call()
        assert err.value.time == 0 and err.value.resolution == resolution


@pytest.mark.parametrize("d, resolution, kappa", [(2, 16, 20.0), (3, 8, 30.0)])
def test_an_initial_spectral_tail_above_tail_tol_is_refused_up_front(d, resolution, kappa):
    """Mass within MASS_ERROR on the grid, but a projection whose tail exceeds tail_tol."""
    mean = np.eye(d)[-1]
    with pytest.raises(UnderResolved, match="spectral tail") as err:
        check_initial("spectral", d, resolution, lambda p: von_mises_density(p, mean, kappa))
    assert err.value.time == 0


@pytest.mark.parametrize("method, d, resolution", [("fv", 2, 16), ("spectral", 2, 16),
                                                   ("spectral", 3, 8), ("fem", 3, 1)])
@pytest.mark.parametrize("values, word", [
    (lambda n: np.full(n, 1 / 10 + 0j), "complex"),
    (lambda n: np.ones(n, dtype=bool), "booleans"),
    (lambda n: np.array(["0.1"] * n), "strings")])
def test_a_non_real_rho0_is_a_type_error_naming_rho0(method, d, resolution, values, word):
    with pytest.raises(TypeError, match=f"rho0.*{word}"):
        check_initial(method, d, resolution, lambda p: values(len(p)))


def test_spectral_sphere_flag_time_is_the_exact_tail_crossing():
    """Poisson family (beta = 0, V = I): the exact density at each saved time has a computable
    tail max_{2L/3 <= l <= L} A_l / A_0; the solver's flag is its first crossing of tail_tol
    (or the next saved time, within DOP853's error)."""
    from continuum.sphere.exact import poisson_density, poisson_parameter
    from continuum.sphere.harmonic import real_degrees
    from continuum.sphere.spectral import initial_coefficients

    L, big, w0, times = 24, 64, np.array([0.05, 0.05, 0.1]), np.linspace(0, 4, 41)
    w = poisson_parameter(times, w0, np.eye(3))
    tails = []
    for wi in w:  # per-degree norms A_l of the exact density (analysed at degree 64)
        a = initial_coefficients(lambda p: poisson_density(p, wi), big)[0]  # noqa: B023
        A = np.sqrt(np.bincount(real_degrees(big), weights=a**2))
        tails.append(A[(2 * L + 2) // 3:L + 1].max() / A[0])
    k = int(np.argmax(np.array(tails) > 1e-6))
    assert k > 0
    model = Attention(beta=0.0, d=3)
    quiet = solve(model, lambda p: poisson_density(p, w0), times[k - 1], method="spectral",
                  resolution=L, times=times[:k], progress=False)
    assert "under_resolved_from" not in quiet.info
    with pytest.raises(UnderResolved, match="spectral tail") as err:
        solve(model, lambda p: poisson_density(p, w0), 4.0, method="spectral", resolution=L,
              times=times, progress=False)
    assert err.value.time in (times[k], times[min(k + 1, len(times) - 1)])
