"""resolution="auto" (continuum.refine): refine until consecutive resolutions agree to tol,
and an error estimate that bounds the true error against exact solutions."""

import math

import numpy as np
import pytest

from continuum import Attention, Measure, UnderResolved, solve
from continuum.circle.exact import kuramoto_order_parameter, wrapped_cauchy_density
from continuum.refine import ladder, tail_estimate
from continuum.resolution import UnderResolvedWarning
from continuum.sobolev import sobolev_distance
from continuum.sphere.exact import poisson_density, poisson_parameter
from continuum.wasserstein import wasserstein_circle

R0, PSI = 0.3, 0.5
KURAMOTO = Attention(beta=0.0, d=2)  # SA, beta = 0, V = I: wrapped Cauchy stays wrapped Cauchy
TIMES = np.linspace(0.0, 1.0, 5)


def kuramoto_rho0(p):
    return wrapped_cauchy_density(p, R0, PSI)


def circle_true_error(sol, method):
    """W_1 between the Solution and the exact density represented on the same grid (exact
    cell averages for fv, by a 64-point midpoint rule per cell; nodal values for spectral)."""
    n, out = sol.densities.shape[1], []
    for i, t in enumerate(sol.times):
        r = float(kuramoto_order_parameter(t, R0))
        if method == "fv":
            sub = 64
            theta = (2 * np.pi / n) * (np.arange(n)[:, None] + (np.arange(sub) + 0.5) / sub)
            pts = np.stack([np.cos(theta.ravel()), np.sin(theta.ravel())], 1)
            exact = wrapped_cauchy_density(pts, r, PSI).reshape(n, sub).mean(1)
        else:
            exact = wrapped_cauchy_density(sol.points, r, PSI)
        m = exact * sol.quadrature
        out.append(wasserstein_circle(Measure(sol.points, m / m.sum()), sol.measure(i)))
    return np.array(out)


@pytest.mark.parametrize("method, start, tol", [("spectral", 16, 1e-5), ("fv", 32, 1e-4)])
def test_auto_converges_and_its_estimate_bounds_the_kuramoto_error(method, start, tol):
    """Measured slack (estimate / true error at the final time): fv about 6 (the estimate also
    holds the O(h^2) difference of the two piecewise-constant representations), spectral
    about 1e5 (the last difference is the coarse level's error; the fine one is exponentially
    smaller)."""
    sol = solve(KURAMOTO, kuramoto_rho0, 1.0, method=method, resolution="auto", tol=tol,
                start=start, times=TIMES, progress=False)
    info = sol.info
    assert info["resolutions"][0] == start and info["resolution"] == info["resolutions"][-1]
    assert len(info["resolutions"]) >= 3 and np.max(info["differences"][-1]) < tol
    assert "under_resolved_from" not in info
    true = circle_true_error(sol, method)
    assert np.all(info["error_estimate"] >= true)
    assert np.all(info["error_estimate"] <= tol)
    if method == "fv":  # second order, measured from the last three levels
        assert 1.7 <= info["observed_order"] <= 2.3


def test_auto_on_the_sphere_bounds_the_poisson_family_error():
    """SA, beta = 0, any V: rho stays a Poisson kernel P_w(t) (continuum.sphere.exact); H^{-2}
    error of the finest level against the exact density on the same nodes."""
    V = np.array([[1.0, 0.3, 0.0], [-0.2, 0.6, 0.1], [0.05, 0.0, -0.4]])
    W0 = np.array([0.2, -0.3, 0.25])
    times = np.linspace(0.0, 1.0, 3)
    w = poisson_parameter(times, W0, V)
    # the spectral ladder ends at L = 64 (the tail flags L = 32), where DOP853's default
    # rtol = 1e-10 would be the floor of the error: rtol = 1e-13 keeps the spatial error,
    # which the estimate measures, above it. Measured slack at T: spectral 7e4 (the last
    # difference is the coarse error, exponentially above the fine one), fem 1.18.
    for method, start, tol, top, options in (
            ("spectral", 4, 1e-5, 64, dict(rtol=1e-13, atol=1e-15)), ("fem", 1, 1e-3, 4, {})):
        sol = solve(Attention(beta=0.0, d=3, V=V), lambda p: poisson_density(p, W0), 1.0,
                    method=method, resolution="auto", start=start, tol=tol, max_resolution=top,
                    times=times, progress=False, **options)
        degree = sol.info["resolution"] + 1 if method == "spectral" else 64
        true = []
        for i in range(len(times)):
            m = poisson_density(sol.points, w[i]) * sol.quadrature
            true.append(sobolev_distance(Measure(sol.points, m / m.sum()), sol.measure(i), 2.0,
                                         degree))
        assert np.all(sol.info["error_estimate"] >= np.array(true)), method
        assert np.max(sol.info["differences"][-1]) < tol


def test_tail_estimate_formula():
    """The geometric tail e_k = |q_k - q_{k-1}| rho / (1 - rho) (continuum.refine)."""
    diffs = np.array([[0.0, 4e-3], [0.0, 1e-3]])  # rho = 1/4: observed order 2
    estimate, rho, p = tail_estimate(diffs, "fv")
    assert rho == pytest.approx(0.25) and p == pytest.approx(2.0)
    assert estimate[1] == pytest.approx(1e-3 / 3) and estimate[0] == 0.0  # round-off column
    estimate, rho, p = tail_estimate(diffs[-1:], "fv")  # two levels: first order, rho = 1/2
    assert p is None and rho == 0.5 and estimate[1] == pytest.approx(1e-3)
    estimate, rho, _ = tail_estimate(np.array([[1e-2, 4e-3], [1e-3, 2e-3]]), "fv")
    assert rho == pytest.approx(0.5) and estimate[1] == pytest.approx(2e-3)  # the slowest column
    estimate, _, _ = tail_estimate(np.array([[0.0, 2e-3], [0.0, 2.1e-3]]), "fv")
    assert np.isinf(estimate[1])  # not shrinking: no asymptotic regime
    estimate, rho, _ = tail_estimate(np.array([[0.0, 1e-2], [0.0, 1e-4]]), "fem")
    assert rho == 0.25  # capped at the design order 2
    estimate, rho, p = tail_estimate(np.array([[0.0, 1e-2], [0.0, 1e-4]]), "spectral")
    assert rho == 0.5 and estimate[1] == 1e-4 and p == pytest.approx(math.log2(100))
    assert ladder("fem", 3, 2, 5) == [2, 3, 4, 5] and ladder("fv", 2, 32, 200) == [32, 64, 128]


def test_not_converged_within_max_resolution_names_the_resolution_and_difference():
    kw = dict(method="fv", resolution="auto", tol=1e-9, start=16, max_resolution=64,
              times=TIMES, progress=False)
    with pytest.raises(UnderResolved, match=r"resolution 64: not converged to tol = 1e-09: "
                                            r"the difference between resolutions \[32, 64\]"):
        solve(KURAMOTO, kuramoto_rho0, 1.0, **kw)
    with pytest.warns(UnderResolvedWarning, match="not converged"):
        sol = solve(KURAMOTO, kuramoto_rho0, 1.0, on_unresolved="warn", **kw)
    assert sol.info["resolution"] == 64 and "under_resolved_from" in sol.info


def test_the_finest_level_must_be_resolved():
    """A run that clusters below the finest grid: converged differences are not enough."""
    with pytest.raises(UnderResolved, match="under-resolved from"):
        solve(KURAMOTO, kuramoto_rho0, 16.0, method="fv", resolution="auto", tol=1.0,
              start=16, max_resolution=32, times=np.linspace(0, 16, 9), progress=False)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(tol=0.0), ValueError, "tol"),
    (dict(tol=-1e-3), ValueError, "tol"),
    (dict(tol="1e-3"), TypeError, "tol"),
    (dict(max_resolution=16, start=32), ValueError, "max_resolution"),
    (dict(max_resolution=33), ValueError, "max_resolution"),
    (dict(max_resolution=2.5), TypeError, "max_resolution"),
    (dict(method="fem", max_resolution=9), ValueError, "max_resolution"),
])
def test_auto_arguments_are_checked_before_any_run(kwargs, error, word):
    args = dict(method="fv", resolution="auto")
    args.update(kwargs)
    d = 3 if args["method"] == "fem" else 2
    with pytest.raises(error, match=word):
        solve(Attention(beta=1.0, d=d), lambda p: np.full(len(p), 1.0), 1.0, **args)


def test_tol_without_auto_is_refused():
    with pytest.raises(ValueError, match="tol and max_resolution go with resolution='auto'"):
        solve(KURAMOTO, kuramoto_rho0, 1.0, method="fv", resolution=64, tol=1e-3)


def test_levels_that_cannot_hold_the_initial_density_are_skipped():
    """A von Mises start with kappa = 60 is too concentrated for 16 cells (UnderResolved at
    t = 0): the ladder starts where the grid holds it."""
    from continuum.geometry import von_mises_density

    rho0 = lambda p: von_mises_density(p, np.array([1.0, 0.0]), 60.0)  # noqa: E731
    sol = solve(KURAMOTO, rho0, 0.2, method="fv", resolution="auto", tol=1e-2, start=16,
                max_resolution=256, times=[0.0, 0.1, 0.2], progress=False)
    assert sol.info["resolutions"][0] > 16 and len(sol.info["resolutions"]) >= 2
    with pytest.raises(UnderResolved, match="cannot hold the initial density"):
        solve(KURAMOTO, rho0, 0.2, method="fv", resolution="auto", start=8,
              max_resolution=16, progress=False)
