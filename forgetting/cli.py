"""Command line.

    meanfield demo [--out DIR] [--workers N]     the default study (embedded config)
    meanfield run STUDY.toml [--out DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys


def main(argv=None) -> int:
    from .config import DEFAULT_STUDY, ConfigError, load_study, validate_config
    from .study import run_study

    parser = argparse.ArgumentParser(prog="meanfield", description="Mean-field self-attention "
                                     "on the sphere: LoRA forgetting studies.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the default study: forgetting phase diagram on "
                          "S^1 (finite volumes + particle cross-check), about a minute")
    run = sub.add_parser("run", help="run a study from a TOML config")
    run.add_argument("study", help="path of the TOML study file")
    for p in (demo, run):
        p.add_argument("--out", help="output folder (default: the config's study.output; "
                       "demo: ./meanfield-out/demo)")
        p.add_argument("--workers", type=int, help="worker processes (default: config)")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            cfg = validate_config(copy.deepcopy(DEFAULT_STUDY))
        else:
            cfg = load_study(args.study)
        if args.out:
            cfg["study"]["output"] = args.out
        if args.workers:
            cfg["study"]["workers"] = args.workers
    except ConfigError as err:
        print(f"meanfield: invalid study: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = run_study(cfg)
    print(summary["table"])  # the result: to stdout, messages went to the log (stderr)
    for name, path in summary["files"].items():
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
