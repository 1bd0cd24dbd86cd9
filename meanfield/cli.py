"""Command line.

    meanfield demo [--out DIR] [--workers N] [--scheduler tcp://HOST:PORT]
    meanfield run STUDY.toml [--out DIR] [--workers N] [--scheduler tcp://HOST:PORT] [--quick]
    mpirun -n 2 meanfield run STUDY.toml      every DG solve of the study on both ranks

``--workers N`` runs a forgetting study on a local Dask cluster of N processes,
``--scheduler`` on an existing Dask cluster (see ``forgetting.sweep``); the two exclude each
other on the command line, and either overrides the other one's key of the config (the
study logs which is ignored). The whole study (every run's model, initial density on each
continuum backend's own grid, backend and resolution) is built and checked before any run
starts. Exit status: 0 done; 1 a run failed (the message names it; every finished run is
checkpointed, so running again computes only the rest); 2 an invalid study (one line naming
the key), a study file that cannot be read, or an output folder that cannot be created; 3 the
Dask cluster cannot run it (unreachable, no workers, other versions, lost); 4 the output folder
is in use by another run; 5 the study finished and wrote everything, but some continuum points
are flagged (under-resolved, or resolution = "auto" not converged; one line names them and
the remedy) and ``[backend] allow_unresolved`` is not true; 6 a result cannot be written (the
message names the path and the command that resumes).

A study file's ``[study] kind`` says which package runs it: "forgetting" (the default: the
mean-field forgetting studies of ``forgetting.study``), "realmodel" (all-MiniLM-L6-v2 under
LoRA, ``realmodel.study``) or "onset" (where forgetting starts in eps / g, unit by unit,
``realmodel.onset_study``; ``--quick`` runs its quick mode).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shlex
import sys
from pathlib import Path

STUDY_KINDS = ("forgetting", "realmodel", "onset")


def study_kind(path) -> str:
    """``[study] kind`` of a TOML study file ("forgetting" if absent); ConfigError if the file
    is missing, not TOML, or names another kind."""
    from forgetting.config import ConfigError, read_toml

    raw = read_toml(path)
    study = raw.get("study")
    kind = study.get("kind", "forgetting") if isinstance(study, dict) else "forgetting"
    if kind not in STUDY_KINDS:
        raise ConfigError(f"'study.kind' must be one of {STUDY_KINDS}, got {kind!r}")
    return kind


def main(argv=None) -> int:
    from forgetting.config import (
        DEFAULT_STUDY,
        ConfigError,
        check_scheduler,
        load_study,
        validate_config,
    )

    parser = argparse.ArgumentParser(prog="meanfield", description="Mean-field self-attention "
                                     "on the sphere: LoRA forgetting studies.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the default study: forgetting phase diagram on "
                          "S^1 (finite volumes + particle cross-check), about a minute")
    run = sub.add_parser("run", help="run a study from a TOML config")
    run.add_argument("study", help="path of the TOML study file")
    run.add_argument("--quick", action="store_true", help="onset studies: the quick mode "
                     "(one head, four eps, one random draw; output in <output>/quick)")
    for p in (demo, run):
        p.add_argument("--out", help="output folder (default: the config's study.output; "
                       "demo: ./meanfield-out/demo)")
        p.add_argument("--workers", type=int, help="Dask worker processes on this machine "
                       "(1: none, the runs go in this process; default: config)")
        p.add_argument("--scheduler", help="address of a Dask scheduler to run on, e.g. "
                       "tcp://host:8786 (default: config's study.scheduler)")
    args = parser.parse_args(argv)
    from continuum.sphere.parallel import mpi_world
    from forgetting.sweep import ClusterError, FolderBusy, PointError, WriteError

    # what went wrong -> exit status (module docstring); invalid studies exit with 2
    exit_status = {PointError: 1, ClusterError: 3, FolderBusy: 4, WriteError: 6}

    comm = mpi_world()
    root = comm is None or comm.rank == 0
    # under MPI rank 0 speaks for all; set before the study is read (it logs what it changes)
    logging.basicConfig(level=logging.INFO if root else logging.WARNING, format="%(message)s")
    try:
        _check_options(args, ConfigError)
        kind = "forgetting" if args.command == "demo" else study_kind(args.study)
        if getattr(args, "quick", False) and kind != "onset":
            raise ConfigError("'--quick': only onset studies ([study] kind = \"onset\") have a "
                              "quick mode")
        if kind == "onset":
            from realmodel.onset_study import load_onset_study

            if args.scheduler or comm is not None:
                raise ConfigError("onset studies run in one process: no --scheduler, no "
                                  "mpirun")
            cfg = load_onset_study(args.study, quick=args.quick)
        elif kind == "realmodel":
            from realmodel.study import load_study as load_realmodel_study

            if args.scheduler or comm is not None:
                raise ConfigError("realmodel studies run in one process: no --scheduler, no "
                                  "mpirun")
            cfg = load_realmodel_study(args.study)
        elif args.command == "demo":
            cfg = validate_config(copy.deepcopy(DEFAULT_STUDY))
        else:
            cfg = load_study(args.study)
        if args.out is not None:  # an onset study's quick mode writes to <out>/quick
            cfg["study"]["output"] = str(Path(args.out) / "quick") if getattr(
                args, "quick", False) else args.out
        if args.workers is not None:
            if cfg["study"].get("scheduler"):
                logging.getLogger(__name__).info(
                    "--workers %d given: study.scheduler = %s ignored", args.workers,
                    cfg["study"]["scheduler"])
            cfg["study"]["workers"] = args.workers
            if "scheduler" in cfg["study"]:
                cfg["study"]["scheduler"] = None
        if args.scheduler:
            check_scheduler(args.scheduler)
            cfg["study"]["scheduler"] = args.scheduler
        if comm is None or comm.rank == 0:
            out = Path(cfg["study"]["output"])
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(f"'study.output': cannot create the folder {out} "
                                  f"({err.strerror or err})") from None
    except ConfigError as err:
        print(f"meanfield: invalid study: {err}", file=sys.stderr)
        return 2
    # Dask's own chatter: its loggers take their levels from this when distributed is imported
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    try:
        if kind == "onset":
            from realmodel.onset_study import run_onset_study

            summary = run_onset_study(cfg)
        elif kind == "realmodel":
            from realmodel.study import run_study as run_realmodel_study

            summary = run_realmodel_study(cfg)
        else:
            from forgetting.study import run_study

            summary = run_study(cfg)
    except ConfigError as err:
        print(f"meanfield: invalid study: {err}", file=sys.stderr)
        return 2
    except (ClusterError, FolderBusy, PointError, WriteError) as err:
        resume = f" (resume: meanfield {shlex.join(sys.argv[1:] if argv is None else argv)})"
        print(f"meanfield: {err}{resume if type(err) in (ClusterError, WriteError) else ''}",
              file=sys.stderr)
        return exit_status[type(err)]
    if root:
        print(summary["table"])  # the result: to stdout, messages went to the log (stderr)
        for name, path in summary["files"].items():
            print(f"wrote {name}: {path}")
    flagged = summary.get("flagged", [])
    if flagged and not cfg.get("backend", {}).get("allow_unresolved", False):
        if root:
            print(f"meanfield: {flagged_line(flagged, cfg['sweep']['axis'])}", file=sys.stderr)
        return 5
    return 0


def flagged_line(flagged, axis) -> str:
    """One line naming the flagged points (backend, value, time; values flagged from the
    same time grouped) and the remedy."""
    groups = {}
    for p in flagged:
        groups.setdefault((p["backend"], p["time"]), []).append(f"{p['value']:g}")
    points = "; ".join(f"{backend} at {axis} = {', '.join(v)} from t = {t:g}"
                       for (backend, t), v in groups.items())
    return (f"{len(flagged)} point(s) not resolved (marked in table.md, the figures and "
            f"study.nc): {points}. Remedy: a higher backend.resolution, resolution = \"auto\" "
            "(refines until D and T_dev settle), or [backend] allow_unresolved = true to "
            "accept them flagged")


def _check_options(args, error) -> None:
    """The command line's own options: ``error`` (ConfigError) naming the option."""
    if args.out is not None and not args.out.strip():
        raise error(f"'--out': must be a folder path, got {args.out!r}")
    if args.workers is not None and args.workers < 1:
        raise error(f"'--workers': must be a positive integer, got {args.workers}")
    if args.workers is not None and args.scheduler:
        raise error("'--workers': cannot be combined with --scheduler (the scheduler's "
                    "workers run the study): give one of them")


if __name__ == "__main__":
    sys.exit(main())
