"""Validation suite: one module per claim, each with ``main(out_dir, quick) -> Record``.

Run all with ``python -m validation [--out DIR] [--quick] [--only NAME ...]``.
"""

CASES = (
    "kernel_reference",
    "rk4_order",
    "growth_rates",
    "kuramoto",
    "energy_usa",
)
