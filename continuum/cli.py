"""Command line: ``meanfield demo`` runs the default study."""

from __future__ import annotations

import argparse
import sys

from continuum.demo import DEFAULTS, run_demo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="meanfield", description="Mean-field self-attention "
                                     "on the sphere: continuum solvers, particles, validation.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the default study (base vs LoRA, particles on S^2)")
    demo.add_argument("--out", default="meanfield-out",
                      help="output folder (default: ./meanfield-out)")
    for key in ("n", "n_times", "lora_rank", "seed"):
        demo.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int,
                          help=f"default {DEFAULTS[key]}")
    for key in ("T", "beta", "lora_norm"):
        demo.add_argument(f"--{key.replace('_', '-')}", dest=key, type=float,
                          help=f"default {DEFAULTS[key]}")
    args = parser.parse_args(argv)
    if args.command == "demo":
        options = {k: getattr(args, k) for k in DEFAULTS}
        run_demo(out=args.out, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
