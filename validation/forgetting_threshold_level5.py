"""Claim (issue 11): on the DG level-5 icosphere the pinning band around the spectral-gap
threshold still contains g and is narrower than on level 4, for g in {0.1, 0.2, 0.4}.

Same experiment, classifier and bisection as ``forgetting_continuum_threshold`` (3 steps per
edge, the level-4 cases of that module run again here so that both levels are compared in one
run). Pass, per g: g inside the level-5 band widened by 1.5 bisection widths (as there), and
band width(level 5) / band width(level 4) <= 1, both bands taken between the bracket
midpoints (for an edge pinned at its search boundary that boundary is the edge).

An extended case: 73 minutes on one core (24 level-5 runs of about 2.5 minutes, 24 level-4
runs of about 30 s; 37.6 minutes on 2 workers, 2026-11-28), so ``python -m validation`` runs
it only with ``--extended``. Measured: bands [0.069, 0.119], [0.163, 0.213], [0.375, 0.425],
width 0.05 each against 0.10, 0.125 and 0.475 (lower edge unresolved) at level 4.
"""

from __future__ import annotations

from validation import forgetting_continuum_threshold as threshold
from validation.record import Record

NAME = "forgetting_continuum_threshold_level5"
GAPS, STEPS = (0.1, 0.2, 0.4), 3


def tasks(quick=False):
    """The band edges at levels 4 and 5 (quick: g = 0.2 at level 4 and 5 with one step)."""
    gaps, steps = ((0.2,), 1) if quick else (GAPS, STEPS)
    return threshold.tasks(gaps=(), fv_resolutions=(),
                           dg_cases=[(level, g, steps) for level in (4, 5) for g in gaps])


task = threshold.task


def main(out_dir=None, quick=False):
    return combine([(kw, task(**kw)) for kw, _ in tasks(quick)], out_dir, quick)


def combine(pieces, out_dir=None, quick=False):
    records = threshold.combine(pieces, out_dir, quick, name=NAME)
    bands = {(r.details[0]["resolution"], r.details[0]["g"]): r.details[0] for r in records
             if r.details and "band" in r.details[0]}
    for g in sorted({g for _, g in bands}):
        fine, coarse = bands[5, g], bands[4, g]
        records.append(Record(
            case=f"{NAME}_narrower_g{g:g}", claim="DG pinning band width, level 5 / level 4 "
            f"(g = {g:g}; must be <= 1)", measured=fine["band"] / coarse["band"], expected=1.0,
            tolerance=0.0, error_kind="at_most", details=[coarse, fine],
            runtime_s=fine["runtime_s"] + coarse["runtime_s"]))
    return [r for r in records if r.details and r.details[0].get("resolution") == 5
            or "narrower" in r.case]
