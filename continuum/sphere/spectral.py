"""Spectral solver on S^2 (``solve(method="spectral")`` with d = 3): real spherical harmonics up
to degree L, Galerkin projection of the flux divergence, DOP853 in time.

.. math::

    \\partial_t \\rho + \\mathrm{div}_S(\\rho X[\\rho]) = 0, \\qquad
    \\rho(x, t) = \\sum_{l \\le L} \\sum_{|m| \\le l} a_{lm}(t) \\phi_{lm}(x),

phi_lm the orthonormal real harmonics of :func:`continuum.sphere.harmonic.to_real`. Per
right-hand side (``SphereSpectral.rhs``):

1. rho on a Gauss-Legendre grid of ``ntheta = 3L/2 + 2`` rings and ``nphi = 2 ntheta`` points
   (the 3/2 rule: quadrature exact for degree 2 ntheta - 1 >= 3L + 3, so products of rho, a
   polynomial field of degree L + 2 and a test function of degree L are integrated exactly);
   ducc0's ``sht.synthesis_2d``.
2. The field X[rho] at the grid nodes.

   * Zonal kernels, Q^T K = c R with R orthogonal, kappa = beta c (and every beta = 0 model):
     exact in coefficient space. With rho_R = rho(R^T .) (a Wigner rotation of the
     coefficients, ``ducc0.sht.rotate_alm``; an improper R = -R' adds the parity (-1)^l) and
     F(x) = int e^{kappa <x, z>} rho_R(z) dz extended to R^3, Funk-Hecke gives
     F = sum 4 pi i_l(kappa |x|) a^R_lm phi_lm(x / |x|), and

         S_1(x) = F(x),   S_y(x) = int y e^{beta <x, A y>} rho(y) dy = R^T grad F(x) / kappa
                = R^T (grad_S G(x) + x H(x)),

     G = sum 4 pi i_l(kappa)/kappa a^R phi, H = sum 4 pi i_l'(kappa) a^R phi (both finite at
     kappa = 0: the l = 1 multipliers tend to 4 pi / 3, the others to 0). grad_S G is ducc0's
     spin-1 synthesis ``mode="DERIV1"``. Every multiplier carries e^{-kappa} (no overflow;
     it cancels in S_y / S_1, and USA multiplies it back).
   * Other Q, K: :func:`continuum.kernels.attention_field` at the nodes with the quadrature
     measure rho_j w_j as sources (exact to round-off while the kernel's degree
     ``expansion_degree(model)`` is at most 2L + 1, which the constructor checks).

   X = P_x^perp V S_y / S_1 (SA) or P_x^perp V S_y (USA).
3. The Galerkin projection of the divergence: for l <= L,

       d a_lm / dt = -int phi_lm div_S(rho X) = int grad_S phi_lm . (rho X)
                   = sum_j w_j grad_S phi_lm(x_j) . (rho X)(x_j),

   the adjoint of the ``DERIV1`` synthesis applied to the weighted flux (its (e_theta, e_phi)
   components). The l = 0 coefficient of the right-hand side is zero (grad phi_00 = 0), so
   the mass sqrt(4 pi) a_00 is conserved to round-off.

For the unnormalised model with a zonal kernel every quantity in 1-3 is a polynomial of the
degrees stated, so the projected dynamics are computed exactly; for SA the ratio S_y / S_1 is
not a polynomial and 3 is a pseudo-spectral product (its aliasing falls with the spectrum).

Time stepping: scipy's DOP853 on the real coefficients. Under-resolution
(:mod:`continuum.resolution`), checked at every saved time: the spectral tail
max_{l >= 2L/3} A_l / A_0 (A_l = (sum_m a_lm^2)^{1/2}) above ``tail_tol``, or the density at
the output nodes below -tail_tol max rho (``continuum.resolution.negative_density``: a
resolved density carries relative errors of the size of its tail, round-off is 1e-16 and
DOP853's error rtol = 1e-10, so an undershoot beyond tail_tol is the Gibbs oscillation of an
unresolved one; issue 22 saw densities down to -8.19 returned after one warning). With
``on_unresolved="raise"`` (the default) the run stops at that saved time and raises
``continuum.UnderResolved`` holding the partial Solution; the remedy is a larger band limit
or ``method="fem"``. A DOP853 failure (the step collapses, e.g. under clusters narrower than the
band limit resolves) raises an error that names the resolution. The Solution holds the density
at the (L + 1) x (2L + 2) Gauss-Legendre nodes with their (positive) quadrature weights, which
integrate degree <= 2L + 1 exactly; ``Solution.measure(i)`` puts the clipped nodal values
max(rho_j, 0) w_j on those nodes; ``info["coefficients"]`` holds a_lm at the saved times.
"""

from __future__ import annotations

import functools
import math
import time as _time

import numpy as np
import scipy.special

from ..checks import check_choice, check_integer, check_memory
from ..family import Schedule, heads_of, layers_of
from ..model import Attention
from ..geometry import tangent_project
from ..initial import check_times, check_total_mass, evaluate_density
from ..resolution import check_on_unresolved, settle_resolution, spectral_indicator
from ..solution import finish_solution
from ..timestep import MAX_STEPS, check_dop853_options, collapse_reason, march_dop853
from .harmonic import (
    _degrees,
    expansion_degree,
    from_real,
    gauss_grid,
    real_degrees,
    to_real,
    zonal_factor,
)

__all__ = ["solve_sphere_spectral", "SphereSpectral", "rotation_angles",
           "analyse", "synthesise", "spectral_tail", "SPHERE_FIELDS", "MAX_BAND_LIMIT"]

#: field paths: "auto" = "funk-hecke" for zonal kernels, else "harmonic" / "direct" as
#: attention_field's "auto" chooses
SPHERE_FIELDS = ("auto", "funk-hecke", "direct", "harmonic")
#: largest band limit accepted (the padded grid has 4.5 L^2 nodes: 3.0e5 at L = 256)
MAX_BAND_LIMIT = 512
#: largest beta ||Q^T K|| of a USA model: its field carries e^(beta ||Q^T K||), and
#: log(float64 max) = 709.78
MAX_USA_EXPONENT = math.log(np.finfo(np.float64).max)


def rotation_angles(R: np.ndarray):
    """(psi, theta, phi, improper) with R = s Rz(phi) Ry(theta) Rz(psi), s = -1 if
    ``improper`` (det R < 0) else 1: the Euler angles ``ducc0.sht.rotate_alm`` takes for the
    active rotation f -> f(R^T .) (checked in the tests against point values)."""
    R = np.asarray(R, dtype=float)
    improper = bool(np.linalg.det(R) < 0)
    P = -R if improper else R
    theta = math.acos(min(1.0, max(-1.0, P[2, 2])))
    if abs(math.sin(theta)) > 1e-8:
        phi = math.atan2(P[1, 2], P[0, 2])
        psi = math.atan2(P[2, 1], -P[2, 0])
    else:  # theta = 0 or pi: only phi +- psi is defined; take psi = 0
        psi = 0.0
        phi = math.atan2(P[1, 0], P[0, 0]) if P[2, 2] > 0 else math.atan2(-P[1, 0], -P[0, 0])
    return psi, theta, phi, improper


def _zonal_multipliers(L: int, kappa: float):
    """e^{-kappa} 4 pi (i_l(kappa), i_l(kappa)/kappa, i_l'(kappa)) for l = 0..L, with the
    kappa -> 0 limits (1 for l = 0 in the first; 1/3 for l = 1 in the others; else 0)."""
    l = np.arange(L + 1, dtype=float)
    if kappa == 0.0:
        value = (l == 0).astype(float)
        grad = radial = (l == 1) / 3.0
    else:
        # i_l(k) e^{-k} = sqrt(pi / (2k)) I_{l+1/2}(k) e^{-k}; i_l' = i_{l+1} + (l / k) i_l
        scaled = math.sqrt(math.pi / (2 * kappa)) * scipy.special.ive(np.arange(L + 2) + 0.5,
                                                                      kappa)
        value = scaled[:-1]
        grad = value / kappa
        radial = scaled[1:] + l / kappa * value
    return 4 * math.pi * value, 4 * math.pi * grad, 4 * math.pi * radial


class _Grid:
    """A Gauss-Legendre grid of ducc0's "GL" geometry: nodes (n, 3), quadrature weights (n,),
    and the rows e_theta, e_phi of the local frame (n, 3) each."""

    def __init__(self, ntheta: int, nphi: int):
        import ducc0

        self.points, self.shape = gauss_grid(0, (ntheta, nphi))
        x, y, z = self.points.T
        s = np.hypot(x, y)  # > 0: Gauss-Legendre nodes avoid the poles
        self.e_theta = np.stack([z * x / s, z * y / s, -s], -1)
        self.e_phi = np.stack([-y / s, x / s, np.zeros_like(s)], -1)
        ring = ducc0.sht.get_gridweights("GL", ntheta) / nphi
        self.weights = np.repeat(ring, nphi)
        for a in (self.points, self.e_theta, self.e_phi, self.weights):
            a.setflags(write=False)


@functools.lru_cache(maxsize=4)
def _padded_grid(ntheta: int) -> _Grid:
    """The padded grid of ntheta x 2 ntheta nodes (read-only, shared by the discretisations of
    several heads and layers)."""
    return _Grid(ntheta, 2 * ntheta)


def synthesise(coefficients: np.ndarray, L: int, ntheta: int, nphi: int) -> np.ndarray:
    """Values (ntheta * nphi,) on the GL grid of sum_p r_p phi_p (real coefficients r)."""
    import ducc0

    return ducc0.sht.synthesis_2d(alm=from_real(coefficients, L)[None], spin=0, lmax=L,
                                  geometry="GL", ntheta=ntheta, nphi=nphi)[0].ravel()


def analyse(values: np.ndarray, L: int, ntheta: int, nphi: int) -> np.ndarray:
    """Real coefficients (int f phi_p)_p, l <= L, of grid values on the GL grid (exact for f of
    degree <= 2 ntheta - 1 - L)."""
    import ducc0

    alm = ducc0.sht.analysis_2d(map=values.reshape(1, ntheta, nphi), spin=0, lmax=L,
                                geometry="GL")[0]
    return to_real(alm, L)


def spectral_tail(coefficients: np.ndarray, L: int) -> float:
    """max_{l >= 2L/3} A_l / A_0 with A_l = (sum_m a_lm^2)^{1/2}: how much of the density the
    band limit fails to resolve."""
    per_degree = np.sqrt(np.bincount(real_degrees(L), weights=coefficients**2, minlength=L + 1))
    return float(per_degree[(2 * L + 2) // 3:].max(initial=0.0) / per_degree[0])


class SphereSpectral:
    """The discretisation of the module docstring for one model and band limit L: the padded
    grid, the field's path and multipliers, and :meth:`rhs`. A MultiHead: one discretisation
    per head (its own path: Funk-Hecke for its zonal heads), the fields summed with the
    heads' weights; ``kappa`` is the largest beta_h ||Q_h^T K_h||."""

    def __init__(self, model, L: int, field: str = "auto"):
        if model.d != 3:
            raise ValueError(f"the spectral S^2 solver needs a d=3 model, got d={model.d}")
        check_choice(field, "field", SPHERE_FIELDS)
        self.parts = None
        if not isinstance(model, Attention):  # several heads: sum_h w_h X_h at the nodes
            self.parts = [(w, SphereSpectral(head, L, field)) for w, head in heads_of(model)]
            first = self.parts[0][1]
            self.model, self.L, self.grid, self.degrees = model, L, first.grid, first.degrees
            self.kappa = max(part.kappa for _, part in self.parts)
            self.path = ",".join(part.path for _, part in self.parts)
            return
        self.kappa = float(model.beta * np.linalg.norm(model.A, 2))
        if not model.normalized and self.kappa > MAX_USA_EXPONENT:
            raise ValueError(
                f"beta: USA with beta ||Q^T K|| = {self.kappa:.4g} (beta = {model.beta:g}): the "
                f"USA scale e^(beta ||Q^T K||) = e^{self.kappa:.4g} exceeds the float64 range "
                f"(e^{MAX_USA_EXPONENT:.2f}), so the field cannot be represented on the grid; "
                f"use SA (normalized=True) or beta ||Q^T K|| <= {MAX_USA_EXPONENT:.2f}")
        self.model, self.L = model, L
        ntheta = (3 * L) // 2 + 2
        self.grid = _padded_grid(ntheta)
        self.degrees = _degrees(L)
        zonal = zonal_factor(model.A) if model.beta > 0 else (1.0, np.eye(3))
        if field == "funk-hecke" and zonal is None:
            raise ValueError("field='funk-hecke' needs a zonal kernel, Q^T K = c R with R "
                             "orthogonal (or beta = 0)")
        self.path = "funk-hecke" if zonal is not None and field in ("auto", "funk-hecke") \
            else field
        if self.path == "funk-hecke":
            c, R = zonal
            self.R = R
            self.rotation = None if np.allclose(R, np.eye(3), atol=1e-15) else \
                rotation_angles(R)
            # an improper R = -R' is R' and then x -> -x: phi_lm(-x) = (-1)^l phi_lm(x), a
            # factor per degree like the multipliers, so it goes into them
            parity = (-1.0) ** np.arange(L + 1) if self.rotation and self.rotation[3] else 1.0
            self.multipliers = [(m * parity)[self.degrees]
                                for m in _zonal_multipliers(L, self.kappa)]
        else:
            needed = expansion_degree(model)
            if needed > 2 * L + 1:
                raise ValueError(
                    f"resolution L = {L} is too small for this kernel: its expansion needs "
                    f"degree {needed} (beta ||Q^T K|| = {self.kappa:.3g}) and the quadrature "
                    f"integrates it exactly only up to 2L + 1 = {2 * L + 1}; use L >= "
                    f"{(needed + 1) // 2}")
        self.usa_scale = math.exp(self.kappa) if not model.normalized else 1.0

    def _sums(self, alm: np.ndarray):
        """(S_1 (n,), S_y (n, 3)) at the padded nodes, scaled by e^{-kappa} (Funk-Hecke)."""
        import ducc0

        ntheta, nphi = self.grid.shape
        if self.rotation is not None:  # the parity of an improper R is in the multipliers
            psi, theta, phi, _ = self.rotation
            alm = ducc0.sht.rotate_alm(alm, self.L, psi, theta, phi)
        value, grad, radial = self.multipliers
        common = {"lmax": self.L, "geometry": "GL", "ntheta": ntheta, "nphi": nphi}
        S1, H = (ducc0.sht.synthesis_2d(alm=(alm * m)[None], spin=0, **common)[0].ravel()
                 for m in (value, radial))
        d_theta, d_phi = ducc0.sht.synthesis_2d(alm=(alm * grad)[None], spin=1, mode="DERIV1",
                                                **common)
        g = self.grid
        S_y = d_theta.ravel()[:, None] * g.e_theta + d_phi.ravel()[:, None] * g.e_phi \
            + H[:, None] * g.points
        if self.rotation is not None:
            S_y = S_y @ self.R  # R^T S_y' for each row
        return S1, S_y

    def field_at_nodes(self, alm: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """X[rho] (n, 3) at the padded nodes, rho its nodal values there."""
        if self.parts is not None:
            return sum(w * part.field_at_nodes(alm, rho) for w, part in self.parts)
        if self.path == "funk-hecke":
            S1, S_y = self._sums(alm)
            mean = S_y / S1[:, None] if self.model.normalized else S_y * self.usa_scale
            return tangent_project(self.grid.points, mean @ self.model.V.T)
        from ..kernels import attention_field

        return attention_field(self.grid.points, self.grid.points, rho * self.grid.weights,
                               self.model, method=self.path, check=False)

    def rhs(self, coefficients: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        """d a / dt (real coefficients) = Galerkin projection of -div_S(rho X[rho]); with
        ``source`` (coefficients of another density) rho is moved by X[source] (the causal
        slices, :mod:`continuum.sphere.causal`)."""
        import ducc0

        ntheta, nphi = self.grid.shape

        def nodal(c):
            alm = from_real(c, self.L)
            return alm, ducc0.sht.synthesis_2d(alm=alm[None], spin=0, lmax=self.L,
                                               geometry="GL", ntheta=ntheta,
                                               nphi=nphi)[0].ravel()

        alm, rho = nodal(coefficients)
        field = self.field_at_nodes(alm, rho) if source is None else \
            self.field_at_nodes(*nodal(source))
        flux = field * (rho * self.grid.weights)[:, None]
        weighted = np.stack([np.einsum("ij,ij->i", flux, self.grid.e_theta),
                             np.einsum("ij,ij->i", flux, self.grid.e_phi)])
        out = ducc0.sht.adjoint_synthesis_2d(map=weighted.reshape(2, ntheta, nphi), spin=1,
                                             lmax=self.L, geometry="GL", mode="DERIV1")[0]
        out[self.degrees == 0] = 0.0  # grad phi_00 = 0: mass is conserved exactly
        return to_real(out, self.L)


def initial_coefficients(rho0, L: int):
    """Real coefficients of rho0 (degree <= L) and the rescaling factor to unit mass.

    rho0 is sampled on a GL grid of 2L + 2 rings (its analysis is exact for the components
    of rho0 up to degree 3L + 3, so only those beyond alias) and checked as every solver
    checks its initial density (finite, non-negative, integral 1 within MASS_ERROR)."""
    ntheta = 2 * L + 2
    grid = _Grid(ntheta, 2 * ntheta)
    values = evaluate_density(rho0, grid.points)
    check_total_mass(float(values @ grid.weights), rho0=rho0, d=3, method="spectral",
                     resolution=L)
    coefficients = analyse(values, L, ntheta, 2 * ntheta)
    mass = coefficients[0] * math.sqrt(4 * math.pi)
    return coefficients / mass, 1.0 / mass


def initial_indicator(coefficients: np.ndarray, L: int, tail_tol: float) -> str:
    """Why the coefficients of a state are under-resolved ("" if resolved): its spectral tail
    or a negative density at the output nodes (``resolution.spectral_indicator``)."""
    return spectral_indicator(synthesise(coefficients, L, L + 1, 2 * L + 2),
                              spectral_tail(coefficients, L), tail_tol)


#: what to do about an under-resolved spectral run on S^2
REMEDY = "use a larger band limit (resolution > {L}), method='fem', or resolution='auto'"


def check_band_limit(resolution) -> int:
    """The band limit L: an integer in [2, MAX_BAND_LIMIT]."""
    return check_integer(resolution, "resolution (the band limit L)", low=2, high=MAX_BAND_LIMIT)


def solve_sphere_spectral(model, rho0, T, resolution=32, times=None, rtol=1e-10, atol=1e-12,
                          field="auto", tail_tol=1e-6, progress=None, max_steps=MAX_STEPS,
                          on_unresolved="raise"):
    """Spectral solution on S^2 (d = 3) of d/dt rho + div_S(rho X[rho]) = 0 (module docstring).

    Parameters
    ----------
    model : Attention, MultiHead or Layers with d = 3 (``continuum.family``)
    rho0 : callable (M, 3) -> (M,)
        Initial density w.r.t. the surface measure (integral 1 within 1e-2; its projection on
        degree <= L is rescaled to mass 1, factor in ``info['initial_rescaling']``).
    T : float
    resolution : int
        Band limit L (maximum spherical-harmonic degree), 2..MAX_BAND_LIMIT.
    times : saved times in [0, T] (default 51 equispaced)
    rtol, atol : DOP853 tolerances (on the real coefficients).
    field : {"auto", "funk-hecke", "direct", "harmonic"}
        The field at the nodes: Funk-Hecke multipliers (zonal kernels, any beta = 0 model),
        or ``attention_field`` with the quadrature measure (any Q, K).
    tail_tol : float
        Under-resolved when the spectral tail exceeds this, or the density at the output
        nodes is below -tail_tol max rho (module docstring).
    progress : bool or None
        tqdm bar on stderr (None: only when stderr is a terminal).
    max_steps : int
        Step budget: when DOP853's step stays (20 steps running) so small that the rest of
        the run would need more, the solver stops with ``StepCollapseError`` saying why
        (under-resolution: the spectral tail; USA's scale e^{beta ||Q^T K||}; stiffness).
    on_unresolved : {"raise", "warn"}
        An under-resolved run (module docstring) stops at the first unresolved saved time
        and raises ``continuum.UnderResolved`` ("raise"), or runs to T, warns once and is
        flagged in ``info["under_resolved_from"]`` ("warn").
    """

    L = check_band_limit(resolution)
    T, times = check_times(T, times)
    rtol, atol, tail_tol, max_steps = check_dop853_options(rtol, atol, tail_tol, progress,
                                                           max_steps)
    on_unresolved = check_on_unresolved(on_unresolved)
    # the padded grid's fields (about 20 arrays of 4.5 L^2 nodes), DOP853's 12 stages of
    # (L + 1)^2 coefficients, the saved coefficients and densities
    nodes = (3 * L // 2 + 2) * (3 * L + 4)
    check_memory(8.0 * (20 * nodes + (L + 1) ** 2 * (times.size + 30)
                        + 2 * (L + 1) ** 2 * times.size), "resolution",
                 f"band limit {L} x {times.size} saved times")
    # the discretisation of the model in force (a Layers switches it: continuum.family);
    # every layer's is built once first, so that its errors come before any work
    paths = [SphereSpectral(m, L, field).path for m in layers_of(model)[1:]]
    schedule = Schedule(model, lambda m: SphereSpectral(m, L, field))
    disc = schedule.built
    paths = list(dict.fromkeys([disc.path, *paths]))
    a0, factor = initial_coefficients(rho0, L)
    out_grid = _Grid(L + 1, 2 * L + 2)
    wall = _time.perf_counter()
    info = {"method": "spectral", "resolution": L, "band_limit": L, "rtol": rtol,
            "atol": atol, "initial_rescaling": factor,
            "field": paths[0] if len(paths) == 1 else paths,
            "padded_grid": disc.grid.shape}
    t_end = max(T, times[-1])
    # first step: a crossing of the grid spacing pi/L at the initial speed (DOP853's own guess
    # ignores the advective limit, and a stage of an unstable first step can overflow)
    # (the largest |X| scaled by its largest component: USA's field may reach e^700, whose
    # square overflows)
    field0 = disc.field_at_nodes(from_real(a0, L), synthesise(a0, L, *disc.grid.shape))
    top = float(np.abs(field0).max())
    speed = top * float(np.linalg.norm(field0 / top, axis=1).max()) if top > 0 else top
    if not np.isfinite(speed):
        raise ValueError(
            f"beta: the initial field overflows float64 (USA scale e^(beta ||Q^T K||) = "
            f"e^{disc.kappa:.4g} (the largest over heads) times ||V||); use SA "
            "(normalized=True), a smaller beta or a smaller V")
    first = min(t_end, math.pi / (L * speed)) if t_end > 0 and speed > 0 else None
    remedy = REMEDY.format(L=L)
    coefficients, tails, run = march_dop853(
        lambda a: schedule.built.rhs(a), a0, times, T, rtol, atol, first,
        f"spectral S^2 solver (L={L})",
        collapse_reason(model, "S2 spectral"), lambda a: spectral_tail(a, L), tail_tol,
        f"band limit L={L}",
        remedy, progress, max_steps, unresolved=lambda a: initial_indicator(a, L, tail_tol),
        stop_unresolved=on_unresolved == "raise", switch=schedule.switch)
    info.update(run)
    if "under_resolved_from" in info:
        info["under_resolved_remedy"] = remedy
    densities = np.stack([synthesise(a, L, *out_grid.shape) for a in coefficients])
    coefficients.setflags(write=False)
    info.update(spectral_tail=tails, coefficients=coefficients,
                wall_time_s=_time.perf_counter() - wall)
    return settle_resolution(finish_solution(model, times, np.array(out_grid.points),
                                             np.array(out_grid.weights), densities, info),
                             on_unresolved)
