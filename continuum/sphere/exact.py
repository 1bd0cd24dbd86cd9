"""An exact solution on S^2: the Poisson-kernel family at beta = 0 (any V, SA or USA).

At beta = 0 both models have X[mu](x) = P_x^perp b, b = V m, m = int y dmu: the field is the
gradient of <x, b>, a conformal vector field, whose flow is a one-parameter family of Moebius
transformations of the sphere. Moebius transformations map the uniform measure to the
hyperbolic Poisson kernels of the unit ball B^3,

.. math::

    P_w(x) = \\frac{1}{4\\pi} \\left(\\frac{1 - |w|^2}{|x - w|^2}\\right)^2, \\qquad |w| < 1,

(the density of phi_# sigma for a Moebius map phi of the ball with phi(0) = w; P_0 is the
uniform density), so a solution started at P_{w0} stays P_{w(t)}, and the Moebius flow moves
w by the extension of the field to the ball (the generator of the hyperbolic isometries,
v(z) = (1 + |z|^2) b / 2 - <b, z> z, which equals P_z^perp b on |z| = 1):

.. math::

    \\dot w = \\frac{1 + |w|^2}{2}\\, b - \\langle b, w\\rangle w, \\qquad
    b = V m(w), \\qquad m(w) = f(|w|) \\frac{w}{|w|},

    f(s) = \\frac{1 + s^2}{2s} - \\frac{(1 - s^2)^2}{2 s^2} \\operatorname{artanh}(s)
         = \\frac{4s}{3} - \\frac{4 s^3}{15} - \\frac{4 s^5}{105} - \\dots

(the first moment of P_w, from (1/2) int_{-1}^{1} t (1 - s^2)^2 / (1 - 2 s t + s^2)^2 dt).
On S^1 the same construction gives the wrapped-Cauchy (Ott-Antonsen) family of
``continuum.circle.exact``. The tests check f against quadrature and the family against the
particle flow and the spectral solver.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_array, check_real
from ..geometry import check_on_sphere, check_points
from ..initial import check_times

__all__ = ["poisson_density", "poisson_mean", "poisson_parameter"]


def poisson_density(points: np.ndarray, w) -> np.ndarray:
    """P_w at ``points`` (M, 3) on the unit sphere (|w| < 1)."""
    w = _check_ball(w, "w")
    points = check_points(points, "points", 3)
    check_on_sphere(points, "points")
    dist2 = np.sum((points - w) ** 2, axis=1)
    return ((1.0 - w @ w) / dist2) ** 2 / (4 * math.pi)


def _check_ball(w, name: str) -> np.ndarray:
    """``w`` as a point (3,) of the open unit ball (finite real numbers, |w| < 1)."""
    w = check_array(w, name, shape=(3,))
    if not np.linalg.norm(w) < 1:
        raise ValueError(f"{name} must be a point of the open unit ball in R^3 (|{name}| < 1), "
                         f"got |{name}| = {np.linalg.norm(w):.6g}")
    return w


def _mean_factor(s: float) -> float:
    """f(s) = |m(w)| for |w| = s (module docstring). Below s = 1/2 the series
    f(s) = 4s/3 - sum_{k >= 2} 4 s^{2k-1} / ((2k+1)(2k-1)(2k-3)) (from artanh's series; the
    closed form's two terms are O(1/s) and cancel to O(s)), summed to k = 40 (tail < 1e-24)."""
    if s < 0.5:
        k = np.arange(2, 41, dtype=float)
        return 4 * s / 3 - float(np.sum(4 * s ** (2 * k - 1)
                                        / ((2 * k + 1) * (2 * k - 1) * (2 * k - 3))))
    return (1 + s * s) / (2 * s) - (1 - s * s) ** 2 / (2 * s * s) * math.atanh(s)


def poisson_mean(w) -> np.ndarray:
    """First moment m(w) = int y P_w(y) dy."""
    return _moment(_check_ball(w, "w"))


def _moment(w: np.ndarray) -> np.ndarray:
    """m(w) for a checked w (the ODE's right-hand side calls it at every stage)."""
    s = float(np.linalg.norm(w))
    return np.zeros(3) if s == 0 else _mean_factor(s) * w / s


def poisson_parameter(times, w0, V, rtol: float = 1e-13, atol: float = 1e-15) -> np.ndarray:
    """w(t) (nt, 3) at ``times`` from w(0) = w0 for X = P_x^perp V m (beta = 0), by DOP853."""
    from scipy.integrate import solve_ivp

    V = check_array(V, "V", shape=(3, 3))
    w0 = _check_ball(w0, "w0")
    times = np.atleast_1d(check_array(times, "times"))
    _, times = check_times(float(times.max(initial=0.0)), times)  # increasing, >= 0
    rtol = check_real(rtol, "rtol", low=0, low_open=True)
    atol = check_real(atol, "atol", low=0, low_open=True)

    def rate(t, w):
        b = V @ _moment(w)
        return 0.5 * (1 + w @ w) * b - (b @ w) * w

    sol = solve_ivp(rate, (0.0, float(times[-1])), w0, method="DOP853",
                    t_eval=times, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"the Poisson-parameter ODE failed: {sol.message}")
    return sol.y.T
