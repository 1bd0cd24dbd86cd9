"""Validation records: what a case measured, what theory expects, the tolerance, pass/fail."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Record", "Timer"]


@dataclass
class Record:
    """One verified claim.

    ``measured`` and ``expected`` are the headline numbers; ``error`` is how far apart they
    are in the stated sense (``error_kind``: "abs", "rel", "value" when the measured number
    itself is compared with the tolerance, "at_least" / "at_most" for one-sided bounds); ``passed`` is ``error <= tolerance``.
    ``details`` holds the per-item table (e.g. one row per mode).
    """

    case: str
    claim: str
    measured: float
    expected: float
    tolerance: float
    error_kind: str = "rel"
    error: float = float("nan")
    passed: bool = False
    details: list = field(default_factory=list)
    figure: str | None = None
    runtime_s: float = float("nan")
    parameters: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.error_kind == "abs":
            self.error = abs(self.measured - self.expected)
        elif self.error_kind == "rel":
            self.error = abs(self.measured - self.expected) / abs(self.expected)
        elif self.error_kind == "value":
            self.error = abs(self.measured)
        elif self.error_kind == "at_least":  # one-sided: measured >= expected - tolerance
            self.error = max(0.0, self.expected - self.measured)
        elif self.error_kind == "at_most":  # one-sided: measured <= expected + tolerance
            self.error = max(0.0, self.measured - self.expected)
        else:
            raise ValueError(f"error_kind must be 'abs', 'rel', 'value', 'at_least' or "
                             f"'at_most', got {self.error_kind}")
        self.passed = bool(math.isfinite(self.error) and self.error <= self.tolerance)

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, default=float))

    def row(self) -> str:
        fig = f"[png]({Path(self.figure).name})" if self.figure else ""
        return (f"| {self.case} | {self.claim} | {self.measured:.6g} | {self.expected:.6g} | "
                f"{self.error:.2e} ({self.error_kind}) | {self.tolerance:.1e} | "
                f"{'PASS' if self.passed else 'FAIL'} | {self.runtime_s:.1f} | {fig} |")


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
