"""Validation cases double as regression tests (scikit-fem's test_examples pattern)."""

import json

import pytest

from validation import CASES, growth_rates, kernel_reference
from validation.__main__ import main as run_validation


def test_growth_rates_small():
    record = growth_rates.main(betas=(1.0,), modes_circle=(1, 3), degrees_sphere=(2,))
    assert record.passed, record.details
    assert all(r["rel_error"] < 1e-4 for r in record.details)


@pytest.mark.slow
def test_growth_rates_full():
    """Issue 2: SA and USA, beta in {1, 4}, modes 1-3 on S^1, degrees 1-2 on S^2, 1e-4 rel."""
    record = growth_rates.main()
    assert len(record.details) == 2 * 2 * (3 + 2)
    assert record.passed, record.details


def test_kernel_reference_case():
    record = kernel_reference.main(m=100, n=300)
    assert record.passed, record.details


def test_runner_writes_records_and_report(tmp_path):
    status = run_validation(["--out", str(tmp_path), "--only", "kernel_reference", "rk4_order"])
    assert status == 0
    report = (tmp_path / "report.md").read_text()
    assert "kernel_reference" in report and "rk4_order" in report and "FAIL" not in report
    rec = json.loads((tmp_path / "records" / "rk4_order.json").read_text())
    assert {"measured", "expected", "tolerance", "passed"} <= rec.keys() and rec["passed"]
    assert (tmp_path / "rk4_order.png").exists()
    assert set(CASES) >= {"kernel_reference", "rk4_order"}
