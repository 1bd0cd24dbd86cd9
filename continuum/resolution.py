"""Under-resolution: what a continuum solver does when it knows its answer is not resolved.

A solver that detects that its grid no longer holds the solution (finite volumes: a cluster
narrower than a cell; spectral: a spectral tail above ``tail_tol``; ...) records the first
saved time at which it did in ``info["under_resolved_from"]`` and why in
``info["under_resolved"]``. :func:`continuum.solve` then decides, by ``on_unresolved``:

- ``"raise"``: :class:`UnderResolved`, an error naming the method, the resolution, the time
  and the remedy; no number of an unresolved run reaches the caller unflagged;
- ``"warn"``: an :class:`UnderResolvedWarning` and the partial Solution, whose ``info`` keeps
  the time and the reason (for studies, which flag such points in their table and figures).
"""

from __future__ import annotations

import math
import warnings

from .checks import check_choice

__all__ = ["UnderResolved", "UnderResolvedWarning", "ON_UNRESOLVED", "check_on_unresolved",
           "settle_resolution"]

#: what :func:`continuum.solve` does with a run its solver knows to be under-resolved
ON_UNRESOLVED = ("raise", "warn")


class UnderResolved(RuntimeError):
    """A continuum run that its solver knows to be under-resolved.

    Attributes: ``method``, ``resolution``, ``time`` (the first saved time at which the
    solution was no longer resolved; 0 for an initial density the grid cannot hold), ``reason``
    and ``remedy`` (strings), ``solution`` (the partial Solution, or None)."""

    def __init__(self, message: str, *, method=None, resolution=None, time=math.nan,
                 reason: str = "", remedy: str = "", solution=None):
        super().__init__(message)
        self.method, self.resolution, self.time = method, resolution, time
        self.reason, self.remedy, self.solution = reason, remedy, solution


class UnderResolvedWarning(UserWarning):
    """``on_unresolved="warn"``: the run is under-resolved from ``info['under_resolved_from']``."""


def check_on_unresolved(value) -> str:
    """``on_unresolved``: "raise" or "warn" (else an error naming it)."""
    check_choice(value, "on_unresolved", ON_UNRESOLVED)
    return value


def settle_resolution(solution, on_unresolved: str):
    """Raise :class:`UnderResolved` (``"raise"``) or warn (``"warn"``) if the solver recorded
    ``info["under_resolved_from"]``; return the Solution otherwise (or when warned)."""
    info = solution.info
    if "under_resolved_from" not in info:
        return solution
    t = float(info["under_resolved_from"])
    method, resolution = info.get("method"), info.get("resolution")
    reason = info.get("under_resolved", "the solver's resolution indicator fired")
    remedy = info.get("under_resolved_remedy", "increase resolution")
    message = (f"{method} solver at resolution {resolution} is under-resolved from "
               f"t = {t:g}: {reason}; {remedy} (or pass on_unresolved='warn' to keep the "
               "partial run, flagged in info['under_resolved_from'])")
    if on_unresolved == "raise":
        raise UnderResolved(message, method=method, resolution=resolution, time=t,
                            reason=reason, remedy=remedy, solution=solution)
    warnings.warn(message, UnderResolvedWarning, stacklevel=3)
    return solution
