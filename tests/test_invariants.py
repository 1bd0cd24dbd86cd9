"""Invariants checked before a result is returned (issue 22): finite values, points on the
sphere, non-negative weights, the requested saved times, mass to its round-off bound; a
violation is an InvariantError naming the quantity, its value and the bound."""

import numpy as np
import pytest

from continuum import Attention, solve
from continuum.circle.exact import wrapped_cauchy_density
from continuum.geometry import SPHERE_TOL
from continuum.invariants import EPS, OPS_PER_STEP, InvariantError, check_result, mass_bound
from particles import simulate

CIRCLE = np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
TIMES = np.array([0.0, 0.5, 1.0])


def _dens(rows=3):
    return np.full((rows, 8), 1 / (2 * np.pi))


@pytest.mark.parametrize("change, quantity", [
    (dict(densities=_dens() * np.array([[1.0], [np.nan], [1.0]])), "non-finite densities"),
    (dict(points=CIRCLE * (1 + 10 * SPHERE_TOL)), r"\| \|x\| - 1 \|"),
    (dict(quadrature=np.r_[-1e-3, np.full(7, np.pi / 4)]), "quadrature weights"),
    (dict(densities=_dens() * np.array([[1.0], [1.0 + 1e-9], [1.0]])), "mass drift"),
    (dict(densities=_dens() - np.r_[1.0, np.zeros(7)] / 4), "min of the densities"),
    (dict(times=TIMES[:2]), "saved times"),
    (dict(densities=_dens(2)), "saved densities"),
    (dict(times=np.array([0.0, 1.0, 0.5]), requested=np.array([0.0, 1.0, 0.5])), "increment"),
])
def test_each_violated_continuum_invariant_is_named_with_value_and_bound(change, quantity):
    args = dict(times=TIMES, requested=TIMES, points=CIRCLE, densities=_dens(),
                quadrature=np.full(8, np.pi / 4), positive=True, steps=10)
    args.update(change)
    check = dict(args)
    with pytest.raises(InvariantError, match=quantity) as err:
        check_result("test solver", check.pop("times"), check.pop("requested"),
                     check.pop("points"), **check)
    assert "bound" in str(err.value) and np.isfinite(err.value.bound)


def test_particle_invariants_weights_and_points():
    pts = np.broadcast_to(CIRCLE, (3, 8, 2))
    check_result("particles", TIMES, TIMES, pts, weights=np.full(8, 1 / 8))  # passes
    with pytest.raises(InvariantError, match="weights"):
        check_result("particles", TIMES, TIMES, pts, weights=np.r_[-0.1, np.full(7, 1.1 / 7)])
    bad = pts.copy()
    bad[2, 3] = np.nan
    with pytest.raises(InvariantError, match="non-finite points"):
        check_result("particles", TIMES, TIMES, bad, weights=np.full(8, 1 / 8))


def test_the_mass_bound_is_the_stated_formula_and_holds_on_long_runs():
    """The bound (OPS_PER_STEP (S + 1) + log2 M) eps max_i sum |rho| w, derived in
    continuum.invariants, holds with room on runs of thousands of steps."""
    assert mass_bound(9, 2.0, 1024) == pytest.approx((OPS_PER_STEP * 10 + 10) * EPS * 2.0)
    rho0 = lambda p: wrapped_cauchy_density(p, 0.3, 0.5)  # noqa: E731
    for method, n in (("fv", 1024), ("spectral", 256)):
        sol = solve(Attention(beta=1.0, d=2), rho0, 3.0, method=method, resolution=n,
                    progress=False)  # resolved to T = 3 at n = 256
        drift = np.abs(sol.diagnostics["mass"] - sol.diagnostics["mass"][0]).max()
        steps = sol.info.get("steps", sol.info.get("nfev"))
        assert steps > 100 and drift <= mass_bound(steps, 1.0, n) / 10


def test_a_scheme_that_leaks_mass_is_stopped_naming_the_mass(monkeypatch):
    from continuum.circle import fv

    leaky = fv.FVOperator.__call__

    def call(self, rho):  # a bug: a source term of relative size 1e-9
        d, vmax = leaky(self, rho)
        return d + 1e-9 * rho.mean(), vmax

    monkeypatch.setattr(fv.FVOperator, "__call__", call)
    with pytest.raises(InvariantError, match="mass drift") as err:
        solve(Attention(beta=1.0, d=2), lambda p: wrapped_cauchy_density(p, 0.3, 0.5), 1.0,
              method="fv", resolution=64, progress=False)
    assert err.value.quantity.startswith("mass drift") and err.value.value > err.value.bound


def test_simulate_refuses_non_finite_tokens(monkeypatch):
    import particles.integrate as integrate

    monkeypatch.setattr(integrate, "attention_field",
                        lambda y, *a, **k: np.full_like(y, np.nan))
    x0 = CIRCLE[:5]
    with pytest.raises(InvariantError, match="non-finite points"):
        simulate(Attention(beta=1.0, d=2), x0, 0.2, times=[0.0, 0.1, 0.2], dt=0.05)
