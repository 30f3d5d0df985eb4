"""gunicorn config used by the benchmark: only a hook that tells it the workers' pids.

Each worker writes its pid to $BENCH_PID_DIR/<pid> after the fork, so the
benchmark reads their memory without searching the process table.
"""

import os
from pathlib import Path


def post_fork(server, worker) -> None:
    Path(os.environ["BENCH_PID_DIR"], str(worker.pid)).touch()


def worker_exit(server, worker) -> None:
    Path(os.environ["BENCH_PID_DIR"], str(worker.pid)).unlink(missing_ok=True)
