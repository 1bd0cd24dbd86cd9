"""Run every validation case (main() returns a Record or a list of them), write one JSON
record per claim, a Markdown report and figures.

    python -m validation [--out validation-out] [--quick] [--only NAME ...] [--workers N]
                         [--extended]

Cases run in ``--workers`` processes (default: the machine's cores), each on one thread. A
case is a module with ``main(out_dir, quick)``. A case whose work splits into independent
pieces also defines ``tasks(quick) -> [(kwargs, cost_s), ...]``, ``task(**kwargs)`` (one
piece, returns plain data) and ``combine(pieces, out_dir, quick)`` (``pieces``: the list of
(kwargs, result), in the order of ``tasks``; returns the records and draws the figures); its
``main`` is then ``combine`` over the pieces run in turn. The runner schedules the pieces of
all cases longest first by their cost (seconds on one core, measured), the cases without
pieces by ``validation.COST_S``, and combines a case as soon as its pieces are done.

Exit status 1 if any case fails (or raises).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from continuum.checks import check_integer, check_output_path
from validation import CASES, COST_S, EXTENDED_CASES
from validation.record import Record

logger = logging.getLogger("validation")

HEADER = ("| case | claim | measured | expected | error | tolerance | result | time (s) "
          "| figure |\n|---|---|---|---|---|---|---|---|---|")


def _failed(name: str, text: str) -> Record:
    return Record(case=name, claim="raised an exception", measured=float("nan"), expected=0.0,
                  tolerance=0.0, error_kind="abs", details=[{"traceback": text}])


def _piece(name: str, kwargs, out: Path, quick: bool):
    """Worker: one piece of a case (kwargs None: the whole case, ``main``). Returns
    (ok, result or traceback text, seconds)."""
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(f"validation.{name}")
        result = module.main(out_dir=out, quick=quick) if kwargs is None else \
            module.task(**kwargs)
        return True, result, time.perf_counter() - t0
    except Exception:
        return False, traceback.format_exc(), time.perf_counter() - t0


def _schedule(names, quick):
    """[(case, kwargs or None, cost)] for every piece, longest first, and for every case the
    kwargs of its pieces in the order of its ``tasks`` ([None] for a whole case)."""
    pieces, order = [], {}
    for name in names:
        module = importlib.import_module(f"validation.{name}")
        if hasattr(module, "tasks"):
            listed = module.tasks(quick)
            pieces += [(name, kwargs, cost) for kwargs, cost in listed]
            order[name] = [kwargs for kwargs, _ in listed]
        else:
            pieces.append((name, None, COST_S.get(name, 60.0)))
            order[name] = [None]
    return sorted(pieces, key=lambda p: -p[2]), order


def _execute(pieces, out, quick, workers):
    """Yield (case, kwargs, (ok, result, seconds)) as pieces finish."""
    if workers <= 1:
        for name, kwargs, _ in pieces:
            yield name, kwargs, _piece(name, kwargs, out, quick)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    saved = {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")}
    os.environ.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")  # inherited by the workers
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_piece, name, kwargs, out, quick): (name, kwargs)
                       for name, kwargs, _ in pieces}
            for fut in as_completed(futures):
                yield (*futures[fut], fut.result())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(out: Path, quick: bool, only=None, workers: int = 1, extended: bool = False
        ) -> list[Record]:
    """Run the cases (``only``: a non-empty list of names, or None for all) in ``workers``
    processes and write the records and the report into ``out``."""
    if only is not None:
        if isinstance(only, str) or not list(only):
            raise ValueError(f"only must be a non-empty list of case names (None: every "
                             f"case), got {only!r}")
        unknown = sorted(set(only) - set(CASES + EXTENDED_CASES))
        if unknown:
            raise ValueError(f"only: unknown cases {unknown}; known: {CASES + EXTENDED_CASES}")
    workers = check_integer(workers, "workers", low=1)
    out = check_output_path(out, "out", folder=True)
    (out / "records").mkdir(exist_ok=True)
    names = [name for name in CASES + EXTENDED_CASES
             if (name in only if only else (extended or name in CASES))]
    pieces, expected = _schedule(names, quick)
    done = {name: [] for name in names}
    seconds_by_case: dict[str, float] = {}
    results: dict[str, list[Record]] = {}
    logger.info("[validation] %d cases, %d pieces, %d workers", len(names), len(pieces),
                workers)
    bar = tqdm(total=len(pieces), desc="validation pieces", unit="piece",
               disable=None)  # None: only on a terminal
    for name, kwargs, (ok, value, seconds) in _execute(pieces, out, quick, workers):
        bar.update()
        logger.debug("[validation] piece of %s done in %.1f s: %s", name, seconds, kwargs)
        if not ok:
            logger.error("[validation] %s raised:\n%s", name, value)
            results.setdefault(name, []).append(_failed(name, value))
            continue
        seconds_by_case[name] = seconds_by_case.get(name, 0.0) + seconds
        if kwargs is None:
            results[name] = value if isinstance(value, list) else [value]
        else:
            done[name].append((kwargs, value))
            if len(done[name]) < len(expected[name]) or name in results:
                continue
            order = {json.dumps(k, sort_keys=True, default=str): i
                     for i, k in enumerate(expected[name])}
            ordered = sorted(done[name], key=lambda kv: order[json.dumps(kv[0], sort_keys=True,
                                                                           default=str)])
            try:
                combined = importlib.import_module(f"validation.{name}").combine(
                    ordered, out_dir=out, quick=quick)
                combined = combined if isinstance(combined, list) else [combined]
                # records that do not time themselves: the case's pieces, summed (one core)
                results[name] = [r if r.runtime_s == r.runtime_s else dataclasses.replace(
                    r, runtime_s=seconds_by_case[name]) for r in combined]
            except Exception:
                results[name] = [_failed(name, traceback.format_exc())]
        for record in results[name]:
            logger.info("    %s %s: %s: error %.3g (tolerance %.3g), %.1f s",
                        "PASS" if record.passed else "FAIL", record.case, record.claim,
                        record.error, record.tolerance, record.runtime_s)
    bar.close()
    records, seen = [], set()
    for name in names:  # report in the order of CASES
        for record in results.get(name, [_failed(name, "no result")]):
            if record.case in seen:  # one JSON file per claim: never overwrite another
                raise ValueError(f"validation case {name} returned a second record named "
                                 f"{record.case!r}; case names must be unique")
            seen.add(record.case)
            record.to_json(out / "records" / f"{record.case}.json")
            records.append(record)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Validation report ({stamp}, {platform.node()}, "
             f"{'quick' if quick else 'full'} run, {workers} workers)", "", HEADER]
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
    parser.add_argument("--only", nargs="+", choices=CASES + EXTENDED_CASES, metavar="NAME",
                        help="run only these cases (at least one name)")
    parser.add_argument("--extended", action="store_true",
                        help=f"also the long cases {', '.join(EXTENDED_CASES)}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the machine's cores)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be a positive integer, got {args.workers}")
    try:  # before any case runs: an output folder that cannot be made would lose the results
        check_output_path(args.out, "--out", folder=True)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    t0 = time.perf_counter()
    records = run(args.out, args.quick, args.only, args.workers, args.extended)
    logger.info("[validation] %d of %d pass, %.0f s wall", sum(r.passed for r in records),
                len(records), time.perf_counter() - t0)
    logger.info("[validation] report: %s", args.out / "report.md")
    return 0 if all(r.passed for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
