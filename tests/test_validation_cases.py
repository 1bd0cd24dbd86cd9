"""Validation cases double as regression tests (scikit-fem's test_examples pattern)."""

import json

import pytest

from validation import CASES, growth_rates, kernel_reference
from validation.runner import main as run_validation


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


def test_record_verdict_is_derived_and_cannot_be_overwritten():
    import dataclasses

    from validation.record import Record

    r = Record(case="c", claim="x", measured=1.05, expected=1.0, tolerance=0.1, error_kind="rel")
    assert r.passed and abs(r.error - 0.05) < 1e-12
    with pytest.raises(AttributeError):
        r.passed = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.measured = 3.0
    assert not dataclasses.replace(r, measured=1.2).passed  # a new record, a new verdict
    d = r.to_dict()
    assert d["passed"] is True and d["error"] == r.error


def test_bracket_and_bound_records():
    from validation.record import Record

    inside = Record(case="b", claim="g in band", measured=(0.15, 0.25), expected=0.2,
                    tolerance=0.0, error_kind="bracket")
    outside = Record(case="b2", claim="g in band", measured=(0.21, 0.25), expected=0.2,
                     tolerance=0.005, error_kind="bracket")
    widened = Record(case="b3", claim="g in band", measured=(0.21, 0.25), expected=0.2,
                     tolerance=0.01, error_kind="bracket")
    assert inside.passed and inside.error == 0.0 and inside.measured == (0.15, 0.25)
    assert not outside.passed and abs(outside.error - 0.01) < 1e-15
    assert widened.passed
    assert "[0.15, 0.25]" in inside.row() and "inside: 0.2" in inside.row()
    bound = Record(case="u", claim="ratio <= 1", measured=0.3, expected=1.0, tolerance=0.0,
                   error_kind="at_most")
    assert bound.passed and "<= 1" in bound.row()
    assert not Record(case="l", claim="x >= 2", measured=1.9, expected=2.0, tolerance=0.0,
                      error_kind="at_least").passed
    with pytest.raises(ValueError, match="error_kind"):
        Record(case="k", claim="x", measured=1.0, expected=1.0, tolerance=0.0, error_kind="eq")


def test_runner_refuses_two_records_with_one_name(tmp_path, monkeypatch):
    import types

    import validation.runner as runner
    from validation.record import Record

    def twice(out_dir=None, quick=False):
        return [Record(case="same", claim=c, measured=0.0, expected=0.0, tolerance=0.0,
                       error_kind="abs") for c in ("first", "second")]

    fake = types.SimpleNamespace(main=twice)
    monkeypatch.setattr(runner, "CASES", ("fake_case",))
    monkeypatch.setattr(runner.importlib, "import_module", lambda name: fake)
    with pytest.raises(ValueError, match="unique"):
        runner.run(tmp_path, quick=True)
    assert (tmp_path / "records" / "same.json").exists()  # the first record, not overwritten
    assert "first" in (tmp_path / "records" / "same.json").read_text()


def test_parallel_runner_combines_pieces_like_the_case_itself(tmp_path):
    """A case split into pieces (tasks/task/combine) gives, run by two worker processes in
    any order, the records its own main() gives (the bisections are deterministic)."""
    import subprocess
    import sys

    from validation import forgetting_continuum_threshold as case

    # as a user runs it: spawned workers must import what they run (not from __main__)
    proc = subprocess.run([sys.executable, "-m", "validation", "--out", str(tmp_path), "--only",
                           "forgetting_continuum_threshold", "--quick", "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    direct = {r.case: r for r in case.main(out_dir=None, quick=True)}
    for name, record in direct.items():
        stored = json.loads((tmp_path / "records" / f"{name}.json").read_text())
        assert stored["measured"] == (list(record.measured)
                                      if isinstance(record.measured, tuple) else record.measured)
        assert stored["runtime_s"] >= 0.0
    with pytest.raises(SystemExit):
        run_validation(["--workers", "0"])


@pytest.mark.slow
def test_sobolev_case_quick_through_its_pieces():
    """The Sobolev case's main() = combine over its pieces: quick mode (N <= 10^4, beta = 1)
    keeps the claims and tolerances of the full case (slope -1/2 +- 0.05, |z| <= 4 at t = 0)."""
    from validation import sphere_particles_sobolev as case

    records = case.main(quick=True)
    assert {r.case for r in records} == {f"{case.NAME}_t0", f"{case.NAME}_beta1"}
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]


@pytest.mark.slow
def test_realmodel_head_flow_quick():
    """One real head (the largest gap of the rule): the switch bracket contains g and
    T_dev (eps - g) is constant within 10% from the clustered start (the case's claims)."""
    from validation import realmodel_head_flow

    records = realmodel_head_flow.main(quick=True)
    assert len(records) == 2 and all(r.passed for r in records), [r.details for r in records]


def test_sphere_spectral_cases():
    """Issue 13's claims in small: growth rates (worst over two betas and degrees), the
    Poisson family at L = 64."""
    from validation import sphere_poisson_family, sphere_spectral_growth_rates

    record = sphere_spectral_growth_rates.main(betas=(1.0, 9.0), degrees=(1, 4))
    assert record.passed, record.details
    records = sphere_poisson_family.main(band_limits=(48, 64))
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]


@pytest.mark.slow
def test_sphere_spectral_convergence_and_particles_quick():
    from validation import sphere_spectral_convergence, sphere_spectral_particles

    records = sphere_spectral_convergence.main(quick=True)
    assert all(r.passed for r in records), [(r.case, r.measured) for r in records]
    record = sphere_spectral_particles.main(quick=True)
    assert record.passed, record.details
