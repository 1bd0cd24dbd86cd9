"""Growth rates of the uniform state measured from particle runs.

A symmetric point set with exact quadrature is a stationary particle system that stands for
the uniform measure: the equispaced lattice on S^1 (exact for trigonometric polynomials of
degree < N) and the weighted Gauss-Legendre x equispaced grid on S^2 (exact for spherical
harmonics of degree < 2 n_lat). Since the kernel's spectrum decays like beta^l / l!, the
linearised particle dynamics reproduce the continuum linearisation up to an exponentially
small quadrature error.

Perturbing the positions by a displacement xi proportional to the gradient of a mode
(sin(k theta) on S^1, grad P_l(z) on S^2) perturbs the density by -div(rho0 xi), i.e. by that
mode; by O(d) symmetry xi is an eigenvector of the linearised dynamics, so its amplitude
c(t) = c(0) e^{lambda t} with the continuum growth rate lambda (continuum.linear.uniform_growth_rate). The rate is
measured as log(c(T)/c(0))/T, where c is the weighted L^2 projection of the displacement
from an unperturbed run onto the mode.
"""

from __future__ import annotations

import numpy as np
from scipy.special import eval_legendre

from continuum.checks import check_integer, check_memory, check_real
from continuum.family import check_family, heads_of
from continuum.geometry import (angles_to_circle, circle_grid, gauss_sphere_grid, normalize,
                                tangent_project)
from continuum.measure import Measure
from continuum.timestep import field_scale

from .integrate import simulate

__all__ = ["growth_rate_circle", "growth_rate_sphere", "growth_dt"]


def growth_dt(model) -> float:
    """RK4 step of the growth-rate runs (from near-uniform data, short horizons): the SA-scale
    step min(0.05, 0.1 / (||V|| (1 + 2a))), at which the 1e-4 tolerance of the rates was
    measured, shortened to 2 / L_est where USA's scale e^a (``field_scale``) needs it to stay
    inside RK4's stability interval (2.785). Near the uniform state USA's normaliser-free field
    is about a^{(d-1)/2} times smaller than at a cluster (int e^{beta <x, y>} dy ~ e^a /
    a^{(d-1)/2}), so simulate's default 0.1 / L_est would take many times the steps (20 at
    beta = 4) for no accuracy gained. Several heads: the scales summed with the heads'
    weights."""
    check_family(model, layers=False)
    scale = sum(w * np.linalg.norm(h.V, 2) * (1 + 2 * h.beta * np.linalg.norm(h.A, 2))
                for w, h in heads_of(model))
    sa_scale = min(0.05, 0.1 / max(scale, 1e-300))
    return min(sa_scale, 2.0 / field_scale(model))


def _check_run(T, amplitude, dt):
    """(T, amplitude, dt) of a growth-rate run: T > 0, 0 < amplitude <= 1e-2 (linear
    response: the rate is measured to O(amplitude)), dt None or > 0."""
    T = check_real(T, "T", low=0, low_open=True)
    amplitude = check_real(amplitude, "amplitude", low=0, low_open=True, high=1e-2)
    dt = None if dt is None else check_real(dt, "dt", low=0, low_open=True)
    return T, amplitude, dt


def _rate(model, base_points, weights, pert_points, project, T, dt):
    dt = growth_dt(model) if dt is None else dt
    base = simulate(model, Measure(base_points, weights), T, times=[0.0, T], dt=dt)
    pert = simulate(model, Measure(pert_points, weights), T, times=[0.0, T], dt=dt)
    c0, c1 = (project(pert.points[i], base.points[i]) for i in (0, 1))
    return float(np.log(c1 / c0) / T)


def growth_rate_circle(model, k: int, n: int = 1024, T: float = 1.0, amplitude: float = 1e-7,
                       dt=None) -> float:
    """Growth rate of Fourier mode k measured from n lattice particles on S^1 (d = 2)."""
    check_family(model, d=2, layers=False)
    k = check_integer(k, "k", low=1)
    n = check_integer(n, "n", low=8)
    check_memory(8.0 * n * 2 * 40, "n", f"{n} lattice particles (two runs)")
    T, amplitude, dt = _check_run(T, amplitude, dt)
    if not 1 <= k < n // 4:
        raise ValueError(f"mode k must be in [1, n/4), got k={k}, n={n}")
    base, w = circle_grid(n)
    theta = 2 * np.pi * np.arange(n) / n
    pert = angles_to_circle(theta + amplitude * np.sin(k * theta))
    mode = np.sin(k * theta)

    def project(x, x_base):  # angular displacement projected on sin(k theta)
        dtheta = np.angle((x[:, 0] + 1j * x[:, 1]) / (x_base[:, 0] + 1j * x_base[:, 1]))
        return (w * dtheta) @ mode / ((w * mode) @ mode)

    return _rate(model, base, w, pert, project, T, dt)


def growth_rate_sphere(model, l: int, n_lat: int = 24, T: float = 1.0,
                       amplitude: float = 1e-7, dt=None) -> float:
    """Growth rate of degree l measured from the weighted Gauss grid (2 n_lat^2 points) on S^2."""
    check_family(model, d=3, layers=False)
    l = check_integer(l, "l", low=1)
    n_lat = check_integer(n_lat, "n_lat", low=4)
    check_memory(8.0 * 2 * n_lat**2 * 3 * 40, "n_lat",
                 f"{2 * n_lat**2} grid particles (two runs)")
    T, amplitude, dt = _check_run(T, amplitude, dt)
    if not 1 <= l < n_lat // 2:
        raise ValueError(f"degree l must be in [1, n_lat/2), got l={l}, n_lat={n_lat}")
    base, w = gauss_sphere_grid(n_lat)
    z = base[:, 2]
    # grad_S P_l(z) = P_l'(z) P_x^perp e_z = P_l'(z) (e_z - z x);
    # P_l'(z) (1 - z^2) = l (P_{l-1} - z P_l)
    dP = l * (eval_legendre(l - 1, z) - z * eval_legendre(l, z)) / (1 - z**2)
    grad = dP[:, None] * tangent_project(base, np.broadcast_to([0.0, 0.0, 1.0], base.shape))
    pert = normalize(base + amplitude * grad)
    norm2 = (w * np.einsum("ij,ij->i", grad, grad)).sum()

    def project(x, x_base):
        return (w * np.einsum("ij,ij->i", x - x_base, grad)).sum() / norm2

    return _rate(model, base, w, pert, project, T, dt)
