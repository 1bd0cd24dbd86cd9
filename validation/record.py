"""Validation records: what a case measured, what theory expects, the tolerance, pass/fail.

A record states one claim and carries its own verdict: ``error`` and ``passed`` are computed
from ``measured``, ``expected``, ``tolerance`` and ``error_kind`` every time they are read, so
nothing can overwrite them. The kinds:

=============  ===============================  ==========================================
error_kind     measured / expected              error (pass: error <= tolerance)
=============  ===============================  ==========================================
"abs"          number / number                  |measured - expected|
"rel"          number / number                  |measured - expected| / |expected|
"value"        number / (reference, often 0)    |measured|
"at_most"      number / upper bound             max(0, measured - bound)
"at_least"     number / lower bound             max(0, bound - measured)
"bracket"      [lo, hi] / value inside          distance of expected outside [lo, hi]
=============  ===============================  ==========================================
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Record", "Timer", "ERROR_KINDS"]

ERROR_KINDS = ("abs", "rel", "value", "at_most", "at_least", "bracket")


@dataclass(frozen=True)
class Record:
    """One verified claim (immutable; the verdict is derived, see the module docstring).

    ``details`` holds the per-item table (e.g. one row per mode), ``parameters`` the inputs.
    """

    case: str
    claim: str
    measured: float | tuple
    expected: float
    tolerance: float
    error_kind: str = "rel"
    details: list = field(default_factory=list)
    figure: str | None = None
    runtime_s: float = float("nan")
    parameters: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.error_kind not in ERROR_KINDS:
            raise ValueError(f"error_kind must be one of {ERROR_KINDS}, got {self.error_kind!r}")
        if self.error_kind == "bracket":
            lo, hi = (float(v) for v in self.measured)
            object.__setattr__(self, "measured", (lo, hi))
        else:
            object.__setattr__(self, "measured", float(self.measured))
        if not self.tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")

    @property
    def error(self) -> float:
        m, e = self.measured, self.expected
        if self.error_kind == "abs":
            return abs(m - e)
        if self.error_kind == "rel":
            return abs(m - e) / abs(e)
        if self.error_kind == "value":
            return abs(m)
        if self.error_kind == "at_most":
            return max(0.0, m - e)
        if self.error_kind == "at_least":
            return max(0.0, e - m)
        lo, hi = m
        return max(0.0, lo - e, e - hi)

    @property
    def passed(self) -> bool:
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)

    def to_dict(self) -> dict:
        return {**asdict(self), "error": self.error, "passed": self.passed}

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=float))

    def row(self) -> str:
        fig = f"[png]({Path(self.figure).name})" if self.figure else ""
        if self.error_kind == "bracket":
            measured = f"[{self.measured[0]:.6g}, {self.measured[1]:.6g}]"
        else:
            measured = f"{self.measured:.6g}"
        expected = {"at_most": "<= ", "at_least": ">= ", "bracket": "inside: "}.get(
            self.error_kind, "") + f"{self.expected:.6g}"
        return (f"| {self.case} | {self.claim} | {measured} | {expected} | "
                f"{self.error:.2e} ({self.error_kind}) | {self.tolerance:.1e} | "
                f"{'PASS' if self.passed else 'FAIL'} | {self.runtime_s:.1f} | {fig} |")


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
