"""Issue 15, the study classes: an invalid study stops before any run with one line naming the
key; a failing run keeps every finished one and names itself; resume depends only on what
changes the result; one run per output folder (lock) and atomic outputs; a killed study leaves
no process behind and resumes; corrupted checkpoints are set aside and recomputed."""

import copy
import logging
import math
import os
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from forgetting.config import ConfigError, validate_config
from forgetting.study import run_study
from forgetting.sweep import FolderBusy, FolderLock, PointError, load_point, point_key, run_sweep
from meanfield.cli import main as cli
from tests import sweep_tasks
from tests.test_sweep_cluster import ENV, ROOT, STUDY, meanfield, study_arrays, write_study

TIMEOUT = 180


def config(out, **changes):
    """STUDY (S^2 particles, a few seconds) with output ``out`` and {"section.key": value}."""
    cfg = copy.deepcopy(STUDY)
    cfg["study"]["output"] = str(out)
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        cfg.setdefault(section, {})[key] = value
    return cfg


# class 1: the whole study is built and checked before any run starts

@pytest.mark.parametrize("changes, key", [
    ({"model.d": 4, "model.V_diag": None, "study.workers": 2}, "initial.kind"),  # von Mises
    ({"sweep.axis": "beta", "sweep.values": [1.0, -0.5]}, "sweep.values"),
    ({"sweep.values": [0.1, math.inf]}, "sweep.values"),
    ({"perturbation.seed": "x"}, "perturbation.seed"),
    ({"backend.seed": 1.5}, "backend.seed"),
    ({"model.Q": [[float("nan"), 0, 0], [0, 1, 0], [0, 0, 1]]}, "model.Q"),
    ({"backend.kinds": ["fv"]}, "backend.kinds"),  # fv is on S^1, the model on S^2
    ({"backend.kinds": ["particles", "particles"]}, "backend.kinds"),
    ({"backend.kinds": ["fem"], "backend.resolution": 9}, "backend.resolution"),
    ({"initial.mean": [1.0, 0.0]}, "initial.mean"),
    ({"initial.kappa": -1.0}, "initial.kappa"),
    ({"perturbation.kind": "lora", "perturbation.rank": 5}, "sweep.values"),  # rank > d
])
def test_invalid_study_is_refused_naming_the_key(tmp_path, changes, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(config(tmp_path / "out", **changes))
    assert not (tmp_path / "out").exists()  # nothing was written, no run started


def test_cli_prints_one_line_and_exits_2_before_any_worker(tmp_path, capsys):
    study = write_study(tmp_path / "s.toml", tmp_path / "out", workers=2)
    text = study.read_text().replace('"kinds": ["particles"]', '"kinds": ["fv", "fv"]')
    study.write_text(text.replace('kinds = ["particles"]', 'kinds = ["fv", "fv"]'))
    assert cli(["run", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("meanfield: invalid study: 'backend.kinds'")
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("args, words", [
    (["--workers", "0"], "--workers"),
    (["--workers", "-1"], "--workers"),
    (["--out", "/proc/no/such/folder"], "study.output"),
])
def test_cli_options_are_checked(tmp_path, capsys, args, words):
    study = write_study(tmp_path / "s.toml", tmp_path / "out")
    assert cli(["run", str(study), *args]) == 2
    err = capsys.readouterr().err
    assert "invalid study" in err and words in err and "Traceback" not in err


# class 1 (run time): a failing point names itself, finished points are kept

def test_failing_point_serial_keeps_earlier_points(tmp_path):
    points = [{"seed": s, "fail": s == 2} for s in range(4)]
    with pytest.raises(PointError, match="seed=2.*ValueError: point 2 fails on purpose"):
        run_sweep(sweep_tasks.failing, points, tmp_path, progress=False)
    assert [load_point(tmp_path, p) is not None for p in points] == [True, True, False, False]


def test_failing_point_on_dask_keeps_every_other_point(tmp_path):
    # the failing point is first and fast: the three others finish after it failed
    points = [{"seed": s, "fail": s == 0, "sleep": 0.0 if s == 0 else 0.5} for s in range(4)]
    with pytest.raises(PointError, match="seed=0"):
        run_sweep(sweep_tasks.failing, points, tmp_path, workers=2, progress=False)
    for p in points[1:]:
        np.testing.assert_array_equal(load_point(tmp_path, p)["value"],
                                      sweep_tasks.compute(p)["value"])
    assert load_point(tmp_path, points[0]) is None


# class 2: resume depends only on what changes the result

def test_resume_ignores_output_spelling_and_worker_count(tmp_path):
    out = tmp_path / "out"
    run_study(validate_config(config(out)), progress=False)
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    run_study(validate_config(config(str(out) + "/", **{"study.workers": 2})),
              progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == files  # nothing redone


# class 3: one run per output folder, atomic outputs

def test_a_held_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    with FolderLock(out):
        with pytest.raises(FolderBusy, match="in use by pid"):
            run_study(validate_config(config(out)), progress=False)
        with pytest.raises(FolderBusy):
            with FolderLock(out):
                pass
    with FolderLock(out):  # released
        pass


def test_two_runs_into_one_folder_give_one_correct_result(tmp_path):
    reference = tmp_path / "reference"
    proc = meanfield("run", write_study(tmp_path / "r.toml", reference))
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = write_study(tmp_path / "s.toml", tmp_path / "shared")
    import subprocess

    cmd = [str(Path(os.sys.executable).parent / "meanfield"), "run", str(study)]
    runs = [subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=TIMEOUT), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _ in outcomes)
    assert codes in ([0, 0], [0, 4]), outcomes
    for code, err in outcomes:
        if code == 4:
            assert "is in use by pid" in err
    expected, got = study_arrays(reference), study_arrays(tmp_path / "shared")
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    assert not list((tmp_path / "shared").glob(".*.tmp"))  # no temporary file left


# class 4: killing the main process of a 2-worker study leaves nothing behind

def session_members(sid):
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    members.append(int(entry))
            except OSError:
                pass
    return members


def test_killed_study_leaves_no_process_and_resumes(tmp_path):
    import subprocess

    long = copy.deepcopy(STUDY)
    long["sweep"]["values"] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    long["backend"]["n"] = 150
    out = tmp_path / "out"
    study = write_study(tmp_path / "s.toml", out, base=long, workers=2)
    proc = subprocess.Popen([str(Path(os.sys.executable).parent / "meanfield"), "run",
                             str(study)], env=ENV, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sid = os.getsid(proc.pid)
    try:
        start = time.monotonic()
        while len(list((out / "runs").glob("*.npz"))) < 2:
            assert proc.poll() is None, "the study ended before it could be killed"
            assert time.monotonic() - start < TIMEOUT
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the main process only: its workers must follow
        proc.wait(timeout=30)
        start = time.monotonic()
        while session_members(sid) and time.monotonic() - start < 10:
            time.sleep(0.1)
        survivors = session_members(sid)
    finally:
        for pid in session_members(sid):
            os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes of the killed study still alive after 10 s: {survivors}"
    done = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.npz")}
    rerun = meanfield("run", study, "--workers", "1")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())  # every finished run reused
    assert (out / "study.nc").exists()


# class 8: corrupted checkpoints are named, set aside and recomputed

@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_point_entry"])
def test_corrupted_sweep_checkpoint_is_set_aside_and_recomputed(tmp_path, caplog, damage):
    points = [{"seed": s} for s in range(3)]
    run_sweep(sweep_tasks.compute, points, tmp_path, progress=False)
    path = tmp_path / f"{point_key(points[1])}.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("value.npy", b"")
    with caplog.at_level(logging.WARNING, logger="forgetting.sweep"):
        results = run_sweep(sweep_tasks.compute, points, tmp_path, progress=False)
    assert path.name in caplog.text and "unreadable" in caplog.text
    assert path.with_suffix(".corrupt").exists()
    np.testing.assert_array_equal(results[1]["value"], sweep_tasks.compute(points[1])["value"])
    assert load_point(tmp_path, points[1]) is not None  # rewritten whole


def test_corrupted_simulate_checkpoint_restarts_the_run(tmp_path, caplog):
    from continuum import Attention
    from particles import sample, simulate

    model = Attention(beta=1.0, d=2)
    x0 = sample(lambda p: np.full(len(p), 1 / (2 * np.pi)), n=50, d=2, seed=0)
    reference = simulate(model, x0, 1.0, times=[0.0, 0.5, 1.0], dt=0.1)
    checkpoint = tmp_path / "run.npz"
    simulate(model, x0, 1.0, times=[0.0, 0.5, 1.0], dt=0.1, checkpoint=checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="particles.integrate"):
        again = simulate(model, x0, 1.0, times=[0.0, 0.5, 1.0], dt=0.1, checkpoint=checkpoint)
    assert "run.npz" in caplog.text and checkpoint.with_suffix(".corrupt").exists()
    np.testing.assert_array_equal(again.points, reference.points)
