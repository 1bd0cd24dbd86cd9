"""A write that fails says so (issue 22): a read-only folder, an object in the way, no space
left. Each is one WriteError (CLI: one ``meanfield:`` line, exit status 6) naming the path and
the cause, with every result written before kept, and the same command resumes.

A read-only folder is made with ``chmod`` when the tests do not run as root, else with
``chattr +i`` (root ignores the mode bits); where neither works the test is skipped, saying
why. "No space left" is the kernel's own ENOSPC: the temporary file is a link to /dev/full.
"""

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forgetting.sweep import FolderLock, WriteError, load_point, point_key, run_sweep, \
    write_atomic
from tests import sweep_tasks
from tests.test_sweep_cluster import ENV, ROOT, write_study

MEANFIELD = Path(sys.executable).parent / "meanfield"


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made unwritable for this process for the block, then writable again."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    else:
        if shutil.which("chattr") is None:
            pytest.skip("running as root (chmod does not stop writes) and no chattr")
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"running as root and chattr +i fails here: {made.stderr.strip()}")
        undo = ["chattr", "-i", str(folder)]
    try:
        probe = folder / ".probe"
        with contextlib.suppress(OSError):
            probe.write_text("x")
            probe.unlink()
            pytest.skip(f"{folder} stays writable for this process")
        yield
    finally:
        subprocess.run(undo, check=True)


def run_cli(*args):
    return subprocess.run([str(MEANFIELD), *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def assert_one_line(stderr: str, *words):
    lines = [line for line in stderr.splitlines() if line.startswith("meanfield:")]
    assert len(lines) == 1, stderr[-3000:]
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in stderr, stderr[-3000:]


POINTS = [{"seed": s} for s in range(3)]


def assert_points(folder, points, present):
    for p, there in zip(points, present):
        got = load_point(folder, p)
        assert (got is not None) == there, p
        if there:
            assert np.array_equal(got["value"], sweep_tasks.compute(p)["value"])


def test_read_only_sweep_folder_names_path_and_cause(tmp_path):
    """A sweep into a read-only folder: WriteError naming the checkpoint's path and the
    cause; nothing half-written (no temporary file left)."""
    folder = tmp_path / "points"
    with read_only(folder):
        with pytest.raises(WriteError) as err:
            run_sweep(sweep_tasks.compute, POINTS, folder, progress=False)
        cause = os.strerror(errno.EPERM if os.geteuid() == 0 else errno.EACCES)
        assert str(folder / f"{point_key(POINTS[0])}.npz") in str(err.value)
        assert cause in str(err.value) and "run the same command again" in str(err.value)
    assert list(folder.iterdir()) == []


def test_no_space_left_keeps_the_points_written_before(tmp_path):
    """ENOSPC on the second point's checkpoint (its temporary file leads to /dev/full): the
    error names that path and 'No space left on device'; the first point stays, and a re-run
    (space back) computes only the rest."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    path = tmp_path / f"{point_key(POINTS[1])}.npz"
    full = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # write_atomic's temporary name
    full.symlink_to("/dev/full")
    with pytest.raises(WriteError, match=f"cannot write {path}: No space left on device"):
        run_sweep(sweep_tasks.compute, POINTS, tmp_path, progress=False)
    assert not full.exists() and not full.is_symlink() and not path.exists()
    assert_points(tmp_path, POINTS, [True, False, False])
    results = run_sweep(sweep_tasks.compute, POINTS, tmp_path, progress=False)
    assert_points(tmp_path, POINTS, [True, True, True])
    assert len(results) == 3


def test_object_in_the_way_of_a_file_or_a_folder(tmp_path):
    """A directory where write_atomic's file goes (and a file where a sweep's folder goes):
    a WriteError naming the path and the cause; the directory is left alone."""
    target = tmp_path / "study.nc"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(WriteError, match=rf"cannot write {target}: Is a directory"):
        write_atomic(target, lambda tmp: tmp.write_text("data"))
    assert (target / "inside").is_dir() and len(list(tmp_path.iterdir())) == 1
    blocker = tmp_path / "points"
    blocker.write_text("not a folder")
    with pytest.raises(WriteError, match=rf"cannot create the folder {blocker}: File exists"):
        run_sweep(sweep_tasks.compute, POINTS, blocker, progress=False)
    with pytest.raises(WriteError, match=r"create the lock file .*Not a directory"):
        with FolderLock(blocker / "out"):
            pass


def test_read_only_points_folder_after_the_runs_cli_status_6(tmp_path):
    """The issue's case: `points/` unwritable, so the study fails after all its runs are
    done: one line naming a file in points/ and the cause, the resume command, exit status
    6; the runs are kept, and the same command, once the folder is writable, computes only the
    deviations."""
    out = tmp_path / "out"
    study = write_study(tmp_path / "s.toml", out)
    with read_only(out / "points"):
        proc = run_cli("run", study)
    assert proc.returncode == 6, proc.stderr[-3000:]
    assert_one_line(proc.stderr, f"cannot write {out / 'points'}/", f"resume: meanfield run "
                    f"{study}")
    assert len(list((out / "runs").glob("*.npz"))) == 4  # 1 base + 3 fine-tuned runs, kept
    again = run_cli("run", study)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "4 of 4 points loaded from checkpoints" in again.stderr
    assert (out / "study.nc").exists()


def test_study_file_with_a_directory_in_the_way_cli_status_6(tmp_path):
    """Not in the issue: `study.nc` blocked by a directory after every run and deviation is
    checkpointed: status 6 naming study.nc; the re-run, with the directory gone, loads all."""
    out = tmp_path / "out"
    (out / "study.nc").mkdir(parents=True)
    study = write_study(tmp_path / "s.toml", out)
    proc = run_cli("run", study)
    assert proc.returncode == 6, proc.stderr[-3000:]
    assert_one_line(proc.stderr, f"cannot write {out / 'study.nc'}: Is a directory")
    (out / "study.nc").rmdir()
    again = run_cli("run", study)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("4 of 4 points loaded from checkpoints") == 2


def test_read_only_output_folder_cli_status_6(tmp_path):
    """Not in the issue: an existing output folder that is read-only: the lock file cannot
    be made, status 6 at once, naming it."""
    out = tmp_path / "out"
    study = write_study(tmp_path / "s.toml", out)
    with read_only(out):
        proc = run_cli("run", study)
    assert proc.returncode == 6, proc.stderr[-3000:]
    assert_one_line(proc.stderr, f"cannot create the lock file {out / '.lock'}")


@pytest.mark.slow
def test_write_failure_under_mpi_stops_every_rank(tmp_path):
    """Not in the issue: under mpirun -n 2 rank 0 alone writes; when its write fails, the
    WriteError reaches rank 1 too (else mpirun would wait for it forever): exit status 6
    within the time limit, every rank naming the same path."""
    mpirun = MEANFIELD.parent / "mpirun"
    if not mpirun.exists():
        pytest.skip("mpirun not found next to the interpreter")
    out = tmp_path / "out"
    study = write_study(tmp_path / "s.toml", out)
    with read_only(out / "points"):
        proc = subprocess.run([str(mpirun), "-n", "2", str(MEANFIELD), "run", str(study)],
                              env=ENV, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 6, proc.stderr[-3000:]
    lines = {line for line in proc.stderr.splitlines() if line.startswith("meanfield:")}
    assert len(lines) == 1 and f"cannot write {out / 'points'}/" in lines.pop(), proc.stderr
    assert len(list((out / "runs").glob("*.npz"))) == 4
