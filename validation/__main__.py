"""Run every validation case (main() returns a Record or a list of them), write one JSON
record per claim, a Markdown report and figures.

    python -m validation [--out validation-out] [--quick] [--only NAME ...]

Exit status 1 if any case fails (or raises).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import platform
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

from validation import CASES
from validation.record import Record

logger = logging.getLogger("validation")

HEADER = ("| case | claim | measured | expected | error | tolerance | result | time (s) | figure |\n"
          "|---|---|---|---|---|---|---|---|---|")


def run(out: Path, quick: bool, only=None) -> list[Record]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "records").mkdir(exist_ok=True)
    records, seen = [], set()
    for name in CASES:
        if only and name not in only:
            continue
        logger.info("[validation] %s ...", name)
        module = importlib.import_module(f"validation.{name}")
        try:
            result = module.main(out_dir=out, quick=quick)
        except Exception:
            traceback.print_exc()
            result = Record(case=name, claim="raised an exception", measured=float("nan"),
                            expected=0.0, tolerance=0.0, error_kind="abs",
                            details=[{"traceback": traceback.format_exc()}])
        for record in result if isinstance(result, list) else [result]:
            if record.case in seen:  # one JSON file per claim: never overwrite another
                raise ValueError(f"validation case {name} returned a second record named "
                                 f"{record.case!r}; case names must be unique")
            seen.add(record.case)
            record.to_json(out / "records" / f"{record.case}.json")
            logger.info("    %s: %s: error %.3g (tolerance %.3g), %.1f s",
                        "PASS" if record.passed else "FAIL", record.claim, record.error,
                        record.tolerance, record.runtime_s)
            records.append(record)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Validation report ({stamp}, {platform.node()}, "
             f"{'quick' if quick else 'full'} run)", "", HEADER]
    lines += [r.row() for r in records]
    passed = sum(r.passed for r in records)
    lines += ["", f"{passed} of {len(records)} cases pass."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "records.json").write_text(json.dumps([r.to_dict() for r in records], indent=2,
                                                 default=float))
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("validation-out"),
                        help="output folder (default: ./validation-out)")
    parser.add_argument("--quick", action="store_true", help="smaller problems")
    parser.add_argument("--only", nargs="*", choices=CASES, help="run only these cases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    records = run(args.out, args.quick, args.only)
    logger.info("[validation] report: %s", args.out / "report.md")
    return 0 if all(r.passed for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
