"""Sweeps beyond one process: a Dask LocalCluster, an external Dask cluster (``dask scheduler``
and ``dask worker`` started here as subprocesses), killed workers and clients, and a FEM study
under ``mpirun -n 2``.

Everything listens on 127.0.0.1 and every process a test starts is killed by its id when the
test ends, also when it fails; each wait has a timeout, so a failure cannot hang the suite.

Bit-for-bit comparisons of studies run every side in a fresh process after a warm-up run: the
Numba kernels of ``continuum.direct`` (fastmath) give results that differ in the last bit
between a freshly compiled kernel and its cached copy (measured: 2.5e-15 in particle positions),
so a reference computed in the pytest process, which may have compiled them, is not comparable.
"""

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forgetting.config import ConfigError, validate_config
from forgetting.sweep import (
    ClusterError,
    SweepCluster,
    environment_fingerprint,
    fingerprint_differences,
    load_point,
    point_key,
    run_sweep,
)
from tests import sweep_tasks

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
#: seconds any single wait may take before the test fails
TIMEOUT = 180

STUDY = {  # S^2, particles: the Numba field kernel and exact transport, a few seconds serially
    "study": {"name": "cluster"},
    "model": {"d": 3, "V_diag": [1.0, 0.8, 0.6]},
    "perturbation": {"kind": "e2"},
    "backend": {"kinds": ["particles"], "n": 60},
    "initial": {"kind": "von_mises", "kappa": 1.0},
    "time": {"T": 3.0, "n_times": 4},
    "sweep": {"values": [0.0, 0.1, 0.3, 0.5]},
}


def write_study(path: Path, out: Path, base=None, **study) -> Path:
    """A TOML file of ``base`` (default STUDY) with output ``out`` (and more [study] keys)."""
    cfg = copy.deepcopy(STUDY if base is None else base)
    cfg["study"].update(output=str(out), **study)
    lines = []
    for section, keys in cfg.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def meanfield(*args, mpi=0, timeout=TIMEOUT):
    cmd = [str(BIN / "meanfield"), *map(str, args)]
    if mpi:
        cmd = [str(BIN / "mpirun"), "-n", str(mpi)] + cmd
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def study_arrays(out: Path) -> dict:
    with xr.open_dataset(out / "study.nc", engine="h5netcdf") as ds:
        return {k: ds[k].values for k in ds.data_vars}


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """Run STUDY once, so that the Numba kernels it uses are in the cache from here on."""
    tmp = tmp_path_factory.mktemp("warm")
    proc = meanfield("run", write_study(tmp / "warm.toml", tmp / "warm"))
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory, warm_cache):
    """STUDY run serially in a subprocess (with a warm Numba cache)."""
    tmp = tmp_path_factory.mktemp("serial")
    proc = meanfield("run", write_study(tmp / "serial.toml", tmp / "serial"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return study_arrays(tmp / "serial")


def wait_until(condition, what, timeout=TIMEOUT):
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


def kill(proc):
    """SIGKILL a process this test started (and its own children, in its session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextlib.contextmanager
def started(cmd, env=ENV, **kwargs):
    """A subprocess in its own session, killed on exit."""
    proc = subprocess.Popen([str(c) for c in cmd], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                            **kwargs)
    try:
        yield proc
    finally:
        kill(proc)


def worker_count(address) -> int:
    from distributed import Client

    with Client(address, timeout=30) as client:
        return len(client.scheduler_info(n_workers=-1)["workers"])


@contextlib.contextmanager
def dask_cluster(tmp: Path, n_workers: int, worker_env=ENV):
    """``dask scheduler`` and ``n_workers`` single-threaded ``dask worker`` processes without
    nanny (so a killed worker stays dead), on 127.0.0.1; yields (address, workers)."""
    file = tmp / "scheduler.json"
    file.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(started([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                     "0", "--no-dashboard", "--scheduler-file", file]))
        wait_until(lambda: file.exists() and file.stat().st_size > 0, "the scheduler file")
        address = json.loads(file.read_text())["address"]
        workers = [stack.enter_context(started(
            [BIN / "dask", "worker", address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1"], env=worker_env))
            for _ in range(n_workers)]
        wait_until(lambda: worker_count(address) == n_workers, f"{n_workers} workers")
        yield address, workers


def test_local_cluster_study_equals_serial_bit_for_bit(tmp_path, serial_reference):
    """workers = 2: a LocalCluster of two single-threaded processes (Numba threads 1)."""
    from forgetting.config import load_study
    from forgetting.study import run_study

    cfg = load_study(write_study(tmp_path / "s.toml", tmp_path / "out", workers=2))
    run_study(cfg, progress=False)
    got = study_arrays(tmp_path / "out")
    assert got.keys() == serial_reference.keys()
    for name, ref in serial_reference.items():
        assert np.array_equal(got[name], ref), name
    with SweepCluster(workers=2) as cluster:
        threads = cluster.client().run(lambda: __import__("numba").config.NUMBA_NUM_THREADS)
        info = cluster.client().scheduler_info(n_workers=-1)["workers"]
    assert sorted(threads.values()) == [1, 1]
    assert [w["nthreads"] for w in info.values()] == [1, 1]
    assert all(address.startswith("tcp://127.0.0.1:") for address in info)


def test_external_cluster_study_via_cli_and_worker_checks(tmp_path, serial_reference):
    """meanfield run --scheduler: a worker that cannot import the project, or runs an edited
    copy of it, is refused with a message saying so; two proper workers complete the study,
    equal to the serial one."""
    shadow = tmp_path / "shadow" / "forgetting"  # shadows the project on that worker
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no project on this host')\n")
    edited = tmp_path / "edited"  # the project with one comment more
    for package in ("continuum", "particles", "forgetting", "realmodel", "meanfield",
                    "validation"):
        shutil.copytree(ROOT / package, edited / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    with open(edited / "forgetting" / "config.py", "a") as f:
        f.write("# edited on this host\n")
    study = write_study(tmp_path / "s.toml", tmp_path / "out")
    for path, words in ((shadow.parent, ["cannot import the project", "no project on this"]),
                        (edited, ["run other versions", "sources"])):
        with dask_cluster(tmp_path, 1, dict(ENV, PYTHONPATH=str(path))) as (address, _):
            proc = meanfield("run", study, "--scheduler", address)
        assert proc.returncode == 3, proc.stderr[-3000:]
        assert all(word in proc.stderr for word in words), proc.stderr[-3000:]
    with dask_cluster(tmp_path, 2) as (address, _):
        proc = meanfield("run", study, "--scheduler", address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = study_arrays(tmp_path / "out")
    for name, ref in serial_reference.items():
        assert np.array_equal(got[name], ref), name


def test_killed_worker_loses_no_point(tmp_path):
    """One of two workers is killed (SIGKILL) while it runs a point: the scheduler runs that
    point again on the other worker and the sweep returns every point, equal to serial."""
    flag = tmp_path / "victim.pid"
    points = [{"seed": s, "sleep": 0.2, "log": str(tmp_path / "log")} for s in range(8)]
    points[3].update(victim=True, flag=str(flag))
    (tmp_path / "points.json").write_text(json.dumps(points))
    folder = tmp_path / "points"
    with dask_cluster(tmp_path, 2) as (address, workers):
        with started([sys.executable, "-m", "tests.sweep_tasks", folder, address,
                      "killed_once", tmp_path / "points.json"]) as client:
            wait_until(flag.exists, "the victim point to start")
            victim = int(flag.read_text())
            assert victim in [w.pid for w in workers]
            os.kill(victim, signal.SIGKILL)  # a worker this test started
            assert client.wait(timeout=TIMEOUT) == 0
    for p in points:
        assert np.array_equal(load_point(folder, p)["value"], sweep_tasks.compute(p)["value"])
    starts = (tmp_path / "log").read_text().split()
    assert starts[0::2].count("3") == 2  # the killed attempt and the one that finished


def test_killed_client_resumes_and_recomputes_only_the_missing_point(tmp_path):
    block = tmp_path / "block"
    block.touch()
    log = tmp_path / "log"
    points = [{"seed": s, "log": str(log)} for s in range(6)]
    points[4]["block"] = str(block)  # runs until the test removes the file
    (tmp_path / "points.json").write_text(json.dumps(points))
    folder = tmp_path / "points"
    done = [p for p in points if "block" not in p]
    with dask_cluster(tmp_path, 2) as (address, _):
        client_cmd = [sys.executable, "-m", "tests.sweep_tasks", folder, address, "blocked",
                      tmp_path / "points.json"]
        with started(client_cmd) as client:
            wait_until(lambda: all(load_point(folder, p) is not None for p in done),
                       "the unblocked points")
            kill(client)  # the client dies with point 4 in flight
        assert load_point(folder, points[4]) is None
        stamps = {p["seed"]: (folder / f"{point_key(p)}.npz").stat().st_mtime_ns for p in done}
        block.unlink()  # the orphaned task finishes; its result goes nowhere
        runs_before = len(log.read_text().split()) // 2
        proc = subprocess.run([str(c) for c in client_cmd], env=ENV, cwd=ROOT, timeout=TIMEOUT,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    new_starts = log.read_text().split()[2 * runs_before::2]
    assert new_starts == ["4"]  # only the missing point ran again
    assert {p["seed"]: (folder / f"{point_key(p)}.npz").stat().st_mtime_ns for p in done} == stamps
    for p in points:
        assert np.array_equal(load_point(folder, p)["value"], sweep_tasks.compute(p)["value"])


def test_cluster_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        SweepCluster(workers=0)
    with pytest.raises(ValueError, match="scheduler"):
        SweepCluster(scheduler="localhost:8786")
    cfg = copy.deepcopy(STUDY)
    cfg["study"]["scheduler"] = "127.0.0.1:8786"
    with pytest.raises(ConfigError, match=r"study\.scheduler"):
        validate_config(cfg)
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
        with SweepCluster(scheduler="tcp://127.0.0.1:1", connect_timeout=1) as cluster:
            cluster.client()  # nothing listens on port 1
    with dask_cluster(tmp_path, 0) as (address, _):
        with pytest.raises(ClusterError, match="no Dask worker on the Dask scheduler"):
            with SweepCluster(scheduler=address, worker_timeout=1) as cluster:
                cluster.client()
    mine = environment_fingerprint()
    assert mine["sources"] and mine["numpy"] == np.__version__
    other = dict(mine, numpy="1.0", sources="0" * 16)
    assert fingerprint_differences(mine, other) == [
        f"numpy 1.0 (client: {np.__version__})", f"sources {'0' * 16} (client: "
        f"{mine['sources']})"]


def test_mpi_launch_recognised_from_the_launcher_variables(monkeypatch):
    from continuum.sphere.parallel import SIZE_VARIABLES, launched_ranks, mpi_world

    for name in SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert launched_ranks() == 1 and mpi_world() is None  # a plain run never loads MPI
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launched_ranks() == 4
    monkeypatch.setenv("PMI_SIZE", "2")  # MPICH's hydra (the mpich wheel's mpirun)
    assert launched_ranks() == 2


def test_serial_sweep_stays_in_process(tmp_path):
    """workers = 1 and no scheduler: no cluster, the task runs here (a lambda would not
    pickle)."""
    pid = os.getpid()
    results = run_sweep(lambda p: {"pid": np.array(os.getpid()), "x": np.array(p["x"])},
                        [{"x": 1.0}, {"x": 2.0}], tmp_path, progress=False)
    assert [int(r["pid"]) for r in results] == [pid, pid]


def stored_runs(folder: Path) -> dict:
    """{(run, backend, value): checkpoint path} of a study's runs/ folder."""
    out = {}
    for path in folder.glob("*.npz"):
        with np.load(path) as data:
            point = json.loads(str(data["_point"]))
        out[point["run"], point["backend"], point["value"]] = path
    return out


def assert_fem_deviations_close(serial_out: Path, mpi_out: Path):
    """The MPI study's D = W_p (p = 1, 2) against the serial one, within the bound the runs'
    differences imply. Geodesic cost on S^2 (diameter pi): for measures with the same support
    order, W_p^p(a', b') <= W_p^p(a, b) + pi^p (TV(a, a') + TV(b, b')) (move the mass that
    differs anywhere), and moving every atom by at most e changes W_p by at most e (geodesic
    distance <= pi/2 x chord). So |Delta W_p| <= (pi^p (TV_base + TV_tuned))^{1/p}
    + pi/2 (|Delta x_base| + |Delta x_tuned|)."""
    runs_s, runs_m = stored_runs(serial_out / "runs"), stored_runs(mpi_out / "runs")
    assert runs_s.keys() == runs_m.keys()
    tv, shift = {}, {}
    for key in runs_s:
        a, b = np.load(runs_s[key]), np.load(runs_m[key])
        tv[key] = 0.5 * np.abs(a["weights"] - b["weights"]).sum(axis=-1)  # per saved time
        shift[key] = np.linalg.norm(a["support"] - b["support"], axis=-1).max(axis=-1)
    serial, mpi = study_arrays(serial_out), study_arrays(mpi_out)
    with xr.open_dataset(serial_out / "study.nc", engine="h5netcdf") as ds:
        norms = ds["norm"].values
    base = ("base", "fem", None)
    for i, value in enumerate(norms):
        tuned = ("tuned", "fem", float(value)) if value > 0 else base
        for p in (1, 2):
            bound = (np.pi ** p * (tv[base] + tv[tuned])) ** (1 / p) + \
                np.pi / 2 * (shift[base] + shift[tuned])
            got, ref = mpi[f"deviation_w{p}_fem"][i], serial[f"deviation_w{p}_fem"][i]
            assert np.all(np.abs(got - ref) <= bound), (value, p, np.abs(got - ref), bound)
    return serial, mpi


MPI_STUDY = dict(STUDY, backend={"kinds": ["fem", "particles"], "resolution": 2, "n": 60},
                 time={"T": 1.0, "n_times": 3}, sweep={"values": [0.0, 0.3, 0.5]})


@pytest.mark.slow
def test_fem_study_under_mpi_equals_serial_and_resumes(tmp_path, warm_cache):
    """mpirun -n 2 meanfield run: each DG solve on both ranks, particles on rank 0, output
    written once by rank 0; equal to the serial study (particles bit for bit, FEM within the
    bound its round-off implies). A re-run with one DG run and the deviations deleted
    recomputes those alone (the ranks agree on what to skip, or the collective solve hangs)."""
    if not (BIN / "mpirun").exists() and not os.environ.get("CI"):
        pytest.skip("mpirun not found next to the interpreter")
    serial = meanfield("run", write_study(tmp_path / "serial.toml", tmp_path / "serial",
                                          MPI_STUDY))
    assert serial.returncode == 0, serial.stderr[-3000:]
    study = write_study(tmp_path / "mpi.toml", tmp_path / "mpi", MPI_STUDY, workers=2)  # ignored
    proc = meanfield("run", study, mpi=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote data") == 1  # rank 0 alone reports and writes
    assert not list((tmp_path / "mpi").rglob("*.tmp.npz"))
    _, mpi = assert_fem_deviations_close(tmp_path / "serial", tmp_path / "mpi")
    reference = study_arrays(tmp_path / "serial")
    for name in reference:
        if name.endswith("_particles"):
            assert np.array_equal(mpi[name], reference[name]), name
    runs = stored_runs(tmp_path / "mpi" / "runs")
    redo = runs["tuned", "fem", 0.5]
    redo.unlink()
    for path in (tmp_path / "mpi" / "points").glob("*.npz"):
        path.unlink()
    stamps = {k: p.stat().st_mtime_ns for k, p in runs.items() if p != redo}
    proc = meanfield("run", study, mpi=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "5 of 6 points loaded from checkpoints" in proc.stderr
    assert {k: runs[k].stat().st_mtime_ns for k in stamps} == stamps
    assert redo.exists()
    assert_fem_deviations_close(tmp_path / "serial", tmp_path / "mpi")
