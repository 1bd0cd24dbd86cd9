"""Conservative, positivity-preserving finite-volume solver on S^1.

.. math::

    \\frac{d}{dt}\\bar\\rho_j = -\\frac{F_{j+1/2} - F_{j-1/2}}{h}, \\qquad
    F_{j+1/2} = v_{j+1/2}^+ \\rho^E_j + v_{j+1/2}^- \\rho^W_{j+1},

following Carrillo, Chertock and Huang (Commun. Comput. Phys. 17, 2015): cell averages
rho_j on n equal cells, the speed v at the cell interfaces from the attention field of the
cell masses m_j = rho_j h placed at the cell centres (midpoint rule), a piecewise-linear
reconstruction with limited slopes (``"mc"`` monotonised central, default, or ``"minmod"``)
giving the east/west edge values rho^E_j, rho^W_j in [0, 2 rho_j], the upwind flux above, and
SSP-RK3 (Shu-Osher) in time.

Two implementations of the right-hand side: :func:`fv_rhs`, plain numpy, the readable
reference, and :class:`FVOperator`, what the solver uses: everything that depends only on the
model and the grid (kernel FFT, source directions, V^T tau at the interfaces) is computed once,
the three convolutions share one real FFT pair, and the slopes, fluxes and their divergence are
one compiled (Numba) loop. Both compute the same formula; they agree to round-off (tested), and
benchmarks/circle.py measures the ratio.

Guarantees: mass is conserved to round-off (telescoping fluxes); cell averages stay
non-negative when every forward-Euler stage satisfies dt max|v| / h <= 1/2 (outflow of cell j
is at most dt/h max|v| (rho^E_j + rho^W_j) <= 2 dt/h max|v| rho_j), which the step rule
dt = cfl h / max|v| with cfl <= 1/2 enforces; a step whose stages would violate it (the
speed grew within the step) is redone with half the step. Second order on smooth solutions
(first order at extrema, where the limiter clips). Under-resolution
(:mod:`continuum.resolution`), checked at every saved time by
``continuum.resolution.cluster_unresolved``: a cluster narrower than the grid resolves (one cell holds more than ``cluster_fraction`` of the
mass of itself and its two neighbours, with at least 1e-3 of the total mass). From then on the
cluster's shape is a grid artefact, though mass, positivity and its position remain
meaningful: with ``on_unresolved="raise"`` (the default) the run stops at that saved time and
raises ``continuum.UnderResolved`` holding the partial Solution; with "warn" it runs to T and
is flagged in ``info['under_resolved_from']``.
"""

from __future__ import annotations

import math
import time as _time
import numba
import numpy as np

from ..checks import check_choice, check_flag, check_integer, check_memory, check_real
from ..family import Schedule, heads_of, layers_of
from ..model import Attention
from ..geometry import angles_to_circle
from ..initial import check_times, nodal_density
from ..resolution import GRID_REMEDY, check_on_unresolved, cluster_unresolved, settle_resolution
from ..solution import Solution, finish_solution
from ..timestep import MAX_STEPS, collapse_reason, march
from .field import choose_path, circle_velocity, head_paths, is_rotation_kernel, kernel_fft
from .grid import check_resolution, grid, tangents

__all__ = ["solve_fv", "fv_rhs", "FVOperator", "LIMITERS", "circle_neighbours"]

LIMITERS = ("mc", "minmod")


def limited_slopes(rho: np.ndarray, limiter: str) -> np.ndarray:
    """Cell differences s_j (times h) of the piecewise-linear reconstruction (periodic)."""
    fwd = np.roll(rho, -1) - rho
    bwd = rho - np.roll(rho, 1)
    same_sign = fwd * bwd > 0
    if limiter == "minmod":
        s = np.where(np.abs(fwd) < np.abs(bwd), fwd, bwd)
    else:  # monotonised central: minmod(2 bwd, (bwd + fwd)/2, 2 fwd)
        s = np.sign(fwd) * np.minimum(np.minimum(2 * np.abs(fwd), 2 * np.abs(bwd)),
                                      0.5 * np.abs(fwd + bwd))
    return np.where(same_sign, s, 0.0)


def fv_rhs(model, rho, centres, h, limiter, path):
    """(d rho/dt, max |v|) for cell averages rho."""
    v, _ = interface_speed(model, rho, centres, h, path)
    s = limited_slopes(rho, limiter)
    east = rho + 0.5 * s  # value at theta_{j+1/2} from cell j
    west = rho - 0.5 * s  # value at theta_{j-1/2} from cell j
    flux = np.maximum(v, 0.0) * east + np.minimum(v, 0.0) * np.roll(west, -1)  # F_{j+1/2}
    return -(flux - np.roll(flux, 1)) / h, float(np.abs(v).max())


def interface_speed(model, rho, centres, h, path):
    """Speed at the interfaces theta_{j+1/2} = theta_j + h/2 of the measure
    sum_j rho_j h delta_{theta_j} (cell masses at the cell centres)."""
    return circle_velocity(model, centres, rho * h, path, target_shift=0.5 * h)


@numba.njit(cache=True)
def _upwind_divergence(rho, v, h, mc):
    """(-(F_{j+1/2} - F_{j-1/2}) / h, max |v|): limited slopes (MC if ``mc`` else minmod),
    edge values and upwind fluxes in one pass; the same formula as :func:`fv_rhs`."""
    n = rho.size
    s = np.empty(n)
    for j in range(n):
        fwd = rho[(j + 1) % n] - rho[j]
        bwd = rho[j] - rho[j - 1]
        if fwd * bwd > 0:
            if mc:
                s[j] = np.sign(fwd) * min(min(2 * abs(fwd), 2 * abs(bwd)), 0.5 * abs(fwd + bwd))
            else:
                s[j] = fwd if abs(fwd) < abs(bwd) else bwd
        else:
            s[j] = 0.0
    flux = np.empty(n)
    vmax = 0.0
    for j in range(n):
        k = (j + 1) % n
        flux[j] = max(v[j], 0.0) * (rho[j] + 0.5 * s[j]) + min(v[j], 0.0) * (rho[k] - 0.5 * s[k])
        vmax = max(vmax, abs(v[j]))
    out = np.empty(n)
    for j in range(n):
        out[j] = -(flux[j] - flux[j - 1]) / h
    return out, vmax


class FVOperator:
    """rho -> (d rho/dt, max |v|) of the FV scheme on n cells, for one model: the fast form of
    :func:`fv_rhs` (same formula, round-off differences only).

    FFT path (A = c R(alpha)): with cell masses m_j = rho_j h at the centres theta_j and the
    interface targets theta_i + h/2, the numerator sum_j K_{i-j} m_j y_j and the normaliser
    sum_j K_{i-j} m_j are circular convolutions with K_l = e^{beta c (cos(l h + h/2 - alpha)
    - 1)}; the interface speed is v_i = <V num_i, tau_i> / den_i = <num_i, V^T tau_i> / den_i
    (times e^{beta c}, no division, for USA). Kernel path: ``circle_velocity`` as in the
    reference. A MultiHead: one operator per head (its own path, ``field.head_paths``), the
    speeds summed with the heads' weights.
    """

    def __init__(self, model, n: int, limiter: str = "mc", path: str = "fft"):
        self.model, self.n, self.path = model, n, path
        self.h = 2 * np.pi / n
        self.mc = limiter == "mc"
        self.centres = grid(n, offset=0.5)
        self.parts = None
        if not isinstance(model, Attention):  # several heads: sum_h w_h v_h
            self.parts = [(w, FVOperator(head, n, limiter, p)) for (w, head), p in
                          zip(heads_of(model), head_paths(model, path))]
        elif path == "fft":
            c, alpha = is_rotation_kernel(model.A)
            self.beta_c = float(model.beta * c)
            # the kernel is real: its real FFT is the first half of the full one
            self.kernel_hat = kernel_fft(n, self.beta_c, alpha, 0.5 * self.h)[: n // 2 + 1]
            self.sources = np.empty((3, n))  # h (cos theta_j, sin theta_j, 1): m_j = rho_j x
            self.sources[0] = self.h * np.cos(self.centres)
            self.sources[1] = self.h * np.sin(self.centres)
            self.sources[2] = self.h
            self.vt_tau = (tangents(self.centres + 0.5 * self.h) @ model.V).T  # (2, n)

    def speed(self, rho: np.ndarray) -> np.ndarray:
        """Speed v_{j+1/2} at the interfaces."""
        if self.parts is not None:
            return sum(w * op.speed(rho) for w, op in self.parts)
        if self.path != "fft":
            return interface_speed(self.model, rho, self.centres, self.h, self.path)[0]
        conv = np.fft.irfft(self.kernel_hat * np.fft.rfft(self.sources * rho), self.n)
        v = self.vt_tau[0] * conv[0] + self.vt_tau[1] * conv[1]
        if self.model.normalized:
            return v / conv[2]
        v *= math.exp(self.beta_c)
        if not np.all(np.isfinite(v)):
            raise FloatingPointError(f"attention field overflowed (USA, beta={self.model.beta:g})")
        return v

    def __call__(self, rho: np.ndarray):
        return _upwind_divergence(rho, self.speed(rho), self.h, self.mc)


def solve_fv(model, rho0, T, resolution=256, times=None, cfl=0.45, limiter="mc", field="auto",
             cluster_fraction=0.9, progress=None, max_steps=MAX_STEPS,
             on_unresolved="raise") -> Solution:
    """Finite-volume solution on S^1 (d = 2); see the module docstring.

    Parameters
    ----------
    model : Attention, MultiHead or Layers with d = 2 (``continuum.family``)
    rho0 : callable (M, 2) -> (M,), density w.r.t. arc length (evaluated at cell centres)
    T : float
    resolution : int, number of cells n (even, >= 8)
    times : saved times in [0, T] (default 51 equispaced)
    cfl : float in (0, 1/2], dt = cfl h / max|v|
    limiter : {"mc", "minmod"}
    field : {"auto", "fft", "kernel"}
    cluster_fraction : float, threshold of the under-resolution indicator
    progress : bool or None, tqdm bar on stderr (None: only when stderr is a terminal)
    max_steps : int, step budget: a CFL step at which the rest of the run needs more raises
        ``continuum.timestep.StepCollapseError`` saying why (``collapse_reason``)
    on_unresolved : {"raise", "warn"}
        A cluster narrower than a cell (module docstring) stops the run at that saved time
        with ``continuum.UnderResolved`` ("raise"), or the run goes on to T flagged in
        ``info["under_resolved_from"]`` with one warning ("warn").
    """
    if model.d != 2:
        raise ValueError(f"the circle solvers need a d=2 model, got d={model.d}")
    n = check_resolution(resolution, minimum=8)
    T, times = check_times(T, times)
    cfl = check_real(cfl, "cfl", low=0, low_open=True, high=0.5)  # positivity needs <= 1/2
    check_choice(limiter, "limiter", LIMITERS)
    cluster_fraction = check_real(cluster_fraction, "cluster_fraction", low=0, low_open=True,
                                  high=1)
    check_flag(progress, "progress", allow_none=True)
    max_steps = check_integer(max_steps, "max_steps", low=1)
    on_unresolved = check_on_unresolved(on_unresolved)
    # the saved densities plus about ten work vectors of n cells (stages, slopes, FFTs)
    check_memory(8.0 * n * (times.size + 10), "resolution",
                 f"{n} cells x {times.size} saved times")
    paths = [choose_path(m, field) for m in layers_of(model)]  # every layer's, before any work
    path = paths[0] if len(set(paths)) == 1 else paths
    h = 2 * np.pi / n
    centres = grid(n, offset=0.5)
    points = angles_to_circle(centres)
    quadrature = np.full(n, h)
    rho, factor = nodal_density(rho0, points, quadrature, "fv", n)
    out = np.empty((times.size, n))
    wall = _time.perf_counter()
    flagged = {}
    neighbours = circle_neighbours(n)

    # the operator of the model in force (a Layers switches it, continuum.family.Schedule)
    schedule = Schedule(model, lambda m: FVOperator(m, n, limiter, choose_path(m, field)))

    def rhs(r):
        return schedule.built(r)

    def propose(r):  # CFL step from the speed at the start of the step; d1 is reused by step
        d1, vmax = rhs(r)
        return cfl * h / max(vmax, 1e-300), d1

    def step(r, dt, d1):  # SSP-RK3 (Shu-Osher); every stage is a forward-Euler step of size dt
        s1 = r + dt * d1
        d2, v2 = rhs(s1)
        s2 = 0.75 * r + 0.25 * (s1 + dt * d2)
        d3, v3 = rhs(s2)
        # positivity needs dt max|v| <= h/2 at every stage: the speed may grow within the step
        return r / 3.0 + (2.0 / 3.0) * (s2 + dt * d3), max(v2, v3) * dt <= 0.5 * h

    def save(k, r):  # True (stop) at the first unresolved saved time when raising
        out[k] = r
        if not flagged:
            why = cluster_unresolved(r * h, neighbours, cluster_fraction)
            if why:
                flagged.update(under_resolved_from=float(times[k]), under_resolved=why,
                               under_resolved_remedy=GRID_REMEDY.format(resolution=n))
                return on_unresolved == "raise"
        return False

    _, counts = march(rho, times, T, propose, step, save, progress=progress,
                      label=f"fv n={n}", max_steps=max_steps,
                      reason=collapse_reason(model, "S1 fv"), switch=schedule.switch)
    info = {"method": "fv", "resolution": n, "cfl": cfl, "limiter": limiter, "field": path,
            **counts, "initial_rescaling": factor, "wall_time_s": _time.perf_counter() - wall,
            **flagged}
    solution = finish_solution(model, times, points, quadrature, out[: counts["saved"]], info,
                               positive=True)
    return settle_resolution(solution, on_unresolved)


def circle_neighbours(n: int) -> np.ndarray:
    """(n, 2) indices of the two neighbours of each of n cells on the circle."""
    j = np.arange(n)
    return np.stack([(j - 1) % n, (j + 1) % n], axis=1)
