"""Where forgetting starts: two models of the forgetting curve F(x), x = eps / g, a verdict
between them, and the scaling of the onset with the gap across units (issue 23, item 3).

Data: forgetting :math:`F = (\\mathrm{base} - \\mathrm{probe}) / \\mathrm{base}` at points
:math:`x_i = \\varepsilon_i / g` (repeats allowed: several directions per eps). Models, fitted
by unweighted least squares:

- **threshold**: :math:`F(x) = A\\,(x - x^*)_+^{\\,p}` (zero up to the onset :math:`x^*`, a
  power above), 3 parameters (A, x*, p);
- **power law**: :math:`F(x) = A\\,x^{p}` (forgetting from the smallest update on), 2
  parameters. It is the threshold model at x* = 0.

For fixed (x*, p) the amplitude is linear, :math:`A = \\sum_i y_i f_i / \\sum_i f_i^2` with
:math:`f_i = (x_i - x^*)_+^p`, so the fits profile it out: p by bounded scalar minimisation of
log p in [1/8, 8] and x* over a grid (every midpoint between distinct data points, and the
points themselves, from 0 to the largest) with p on a log grid of 97 values, then refined by
a bounded search in x* between the grid neighbours of the best (p re-optimised at each x*).
With Gaussian errors of unknown variance,
:math:`\\mathrm{AIC} = n \\log(\\mathrm{RSS}/n) + 2k` (k = 3 and 2).

**Interval for x*.** Residual bootstrap of the threshold fit (the design x fixed, residuals
resampled with replacement, refitted), percentile interval at ``level``.

**Verdict** (stated before any run), with :math:`d = \\mathrm{AIC}_{power} -
\\mathrm{AIC}_{threshold}`. The power law is nested in the threshold model, so d >= -2; for
data from a power law :math:`d + 2` is a likelihood-ratio statistic for a parameter on the
boundary of its range, asymptotically a 50:50 mixture of 0 and :math:`\\chi^2_1`.

- ``"threshold"`` if d > 2 (the threshold model better by more than 2 AIC units: P(chi2_1 > 4)
  / 2 = 2.3% under a power law) **and** the lower end of the x* interval lies above the
  smallest x sampled (the data resolve forgetting-free points below the onset);
- ``"power law"`` if d < 0 (the onset parameter does not pay for itself);
- ``"undecided"`` otherwise (0 <= d <= 2, or d > 2 with an onset not resolved by the grid).

**Across units** (:func:`onset_slope`): the least-squares slope of log x*_u g_u = log eps*_u
against log g_u, with a pairs bootstrap over units. Theory (eps* = g) predicts slope 1;
eps* independent of g gives 0.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from continuum.checks import check_array, check_integer, check_real, check_seed

__all__ = ["threshold_curve", "power_curve", "fit_threshold", "fit_power", "fit_onset",
           "onset_slope", "VERDICTS", "P_BOUNDS"]

VERDICTS = ("threshold", "power law", "undecided")
#: range of the exponent p in both fits
P_BOUNDS = (1 / 8, 8.0)


def threshold_curve(x, A, x_star, p):
    """A (x - x*)_+^p."""
    return A * np.maximum(np.asarray(x, dtype=float) - x_star, 0.0) ** p


def power_curve(x, A, p):
    """A x^p."""
    return A * np.asarray(x, dtype=float) ** p


def _amplitude_rss(x, y, x_star, p):
    f = np.maximum(x - x_star, 0.0) ** p
    ff = f @ f
    if ff == 0:
        return 0.0, float(y @ y)
    A = (y @ f) / ff
    r = y - A * f
    return float(A), float(r @ r)


def _best_p(x, y, x_star):
    """(rss, A, p) minimising over p at fixed x*."""
    res = minimize_scalar(lambda lp: _amplitude_rss(x, y, x_star, np.exp(lp))[1],
                          bounds=np.log(P_BOUNDS), method="bounded",
                          options={"xatol": 1e-6})
    p = float(np.exp(res.x))
    A, rss = _amplitude_rss(x, y, x_star, p)
    return rss, A, p


def _check_data(x, y):
    x = check_array(x, "x", ndim=1)
    y = check_array(y, "y", shape=x.shape)
    if np.any(x <= 0):
        raise ValueError("x must be > 0 (eps / g on a log grid)")
    if np.unique(x).size < 4:
        raise ValueError(f"x must hold at least 4 distinct values to fit 3 parameters, got "
                         f"{np.unique(x).size}")
    return x, y


def _aic(rss, n, k):
    return float(n * np.log(max(rss, 1e-300) / n) + 2 * k)


def fit_power(x, y) -> dict:
    """Least-squares A x^p: ``{"A", "p", "rss", "aic"}`` (k = 2)."""
    x, y = _check_data(x, y)
    rss, A, p = _best_p(x, y, 0.0)
    return {"A": A, "p": p, "rss": rss, "aic": _aic(rss, x.size, 2)}


#: exponents of the coarse (x*, p) grid of the threshold fit, before refinement
_P_GRID = np.geomspace(*P_BOUNDS, 97)


def _threshold_fit(x, y):
    u = np.unique(x)
    grid = np.unique(np.r_[0.0, u[:-1], 0.5 * (u[:-1] + u[1:])])
    f = np.maximum(x[None, :] - grid[:, None], 0.0)[:, None, :] ** _P_GRID[None, :, None]
    ff = np.einsum("spn,spn->sp", f, f)
    yf = f @ y
    with np.errstate(invalid="ignore", divide="ignore"):
        rss = np.where(ff > 0, y @ y - yf ** 2 / ff, y @ y)  # profiled over A
    i = int(np.argmin(rss.min(axis=1)))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    best = (*_best_p(x, y, grid[i]), grid[i])
    if hi > lo:
        res = minimize_scalar(lambda s: _best_p(x, y, s)[0], bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-6 * max(hi, 1e-12)})
        cand = (*_best_p(x, y, float(res.x)), float(res.x))
        if cand[0] < best[0]:
            best = cand
    rss, A, p, x_star = best
    return {"A": float(A), "x_star": float(x_star), "p": float(p), "rss": float(rss),
            "aic": _aic(rss, x.size, 3)}


def fit_threshold(x, y, n_boot: int = 200, level: float = 0.95, seed=0) -> dict:
    """Least-squares A (x - x*)_+^p with a residual-bootstrap interval for x*:
    ``{"A", "x_star", "lo", "hi", "p", "rss", "aic"}`` (module docstring)."""
    x, y = _check_data(x, y)
    B = check_integer(n_boot, "n_boot", low=10)
    level = check_real(level, "level", low=0, high=1, low_open=True, high_open=True)
    fit = _threshold_fit(x, y)
    curve = threshold_curve(x, fit["A"], fit["x_star"], fit["p"])
    resid = y - curve
    rng = np.random.default_rng(check_seed(seed))
    stars = [_threshold_fit(x, curve + rng.choice(resid, size=resid.size))["x_star"]
             for _ in range(B)]
    lo, hi = np.quantile(stars, [(1 - level) / 2, (1 + level) / 2])
    return {**fit, "lo": float(lo), "hi": float(hi)}


def fit_onset(x, y, n_boot: int = 200, level: float = 0.95, seed=0) -> dict:
    """Both fits and the verdict (module docstring): ``{"threshold": fit_threshold(...),
    "power": fit_power(...), "delta_aic": AIC_power - AIC_threshold, "verdict"}``."""
    thr = fit_threshold(x, y, n_boot=n_boot, level=level, seed=seed)
    pw = fit_power(x, y)
    d = pw["aic"] - thr["aic"]
    x_min = float(np.min(np.asarray(x, dtype=float)))
    if d > 2 and thr["lo"] > x_min:
        verdict = "threshold"
    elif d < 0:
        verdict = "power law"
    else:
        verdict = "undecided"
    return {"threshold": thr, "power": pw, "delta_aic": float(d), "verdict": verdict}


def onset_slope(gaps, eps_star, n_boot: int = 2000, level: float = 0.95, seed=0) -> dict:
    """Slope of log eps* against log g across units, least squares, with a pairs-bootstrap
    percentile interval over units: ``{"value", "lo", "hi"}``."""
    g = check_array(gaps, "gaps", ndim=1)
    e = check_array(eps_star, "eps_star", shape=g.shape)
    if np.any(g <= 0) or np.any(e <= 0):
        raise ValueError("gaps and eps_star must be > 0 (logarithms are fitted)")
    if np.unique(g).size < 3:
        raise ValueError(f"gaps must hold at least 3 distinct values, got {np.unique(g).size}")
    B = check_integer(n_boot, "n_boot", low=10)
    level = check_real(level, "level", low=0, high=1, low_open=True, high_open=True)
    lg, le = np.log(g), np.log(e)
    value = float(np.polyfit(lg, le, 1)[0])
    rng = np.random.default_rng(check_seed(seed))
    slopes = []
    while len(slopes) < B:
        idx = rng.integers(0, g.size, size=g.size)
        if np.unique(lg[idx]).size >= 2:  # a resample of one unit has no slope
            slopes.append(np.polyfit(lg[idx], le[idx], 1)[0])
    lo, hi = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
    return {"value": value, "lo": float(lo), "hi": float(hi)}
