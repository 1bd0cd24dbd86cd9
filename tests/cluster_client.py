"""A sweep client to run as a subprocess in the cluster-failure tests:

    python -m tests.cluster_client FOLDER WHERE POINTS_JSON

WHERE is a worker count (a LocalCluster) or a scheduler address. The points run
``tests.sweep_tasks.killed_once`` (each sleeps ``point["sleep"]`` s); :func:`crash` is a task for
the in-process tests. Logging is set up as the
command line sets it up (messages to stderr, Dask at warning level), and a ClusterError or a
WriteError ends, as there, in one ``meanfield:`` line and exit status 3 or 6.
"""

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path


def crash(point):
    """Kills its own process (as a fault in compiled code or the OOM killer would) where
    ``point["crash"]``, once the files ``point["after"]`` exist (60 s at most), else
    ``tests.sweep_tasks.compute(point)``."""
    from tests.sweep_tasks import compute

    if point.get("crash"):
        start = time.monotonic()
        while not all(map(os.path.exists, point["after"])) and time.monotonic() - start < 60:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    return compute(point)


if __name__ == "__main__":
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from forgetting.sweep import ClusterError, WriteError, run_sweep
    from tests.sweep_tasks import killed_once

    folder, where, points = sys.argv[1:4]
    place = {"scheduler": where} if "://" in where else {"workers": int(where)}
    try:
        run_sweep(killed_once, json.loads(Path(points).read_text()), folder, progress=False,
                  **place)
    except (ClusterError, WriteError) as err:
        print(f"meanfield: {err}", file=sys.stderr)
        sys.exit(3 if isinstance(err, ClusterError) else 6)
