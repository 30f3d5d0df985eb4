"""The processes the benchmark starts: gunicorn (Keygrant and the floor) and a trivial server.

Each is started in its own process group and stopped by pid: SIGTERM, then
SIGKILL to the group after a grace period, also on errors and Ctrl-C.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


class SetupError(Exception):
    """Something the benchmark needs could not be set up (exit status 2)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(*, database_url: str, port: int) -> dict[str, str]:
    """Production settings: DEBUG off, fresh secrets, the shipped defaults for everything else."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "OAUTH_", "DATABASE_", "CONN_", "CACHE_", "SECURE_", "DEBUG", "ENV_FILE"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        ENV_FILE=os.devnull,  # a developer's .env must not change what is measured
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        OAUTH_ISSUER=f"http://127.0.0.1:{port}",
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """SIGTERM to the process, then SIGKILL to its group (its own, made at start)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any
    except ProcessLookupError:
        pass
    process.wait(timeout=5)


def _wait_until_answering(url: str, process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SetupError(f"{url} did not answer:\n{log.read_text()[-3000:]}")


class Server:
    """`gunicorn config.wsgi:application -w N` (sync workers) on a free 127.0.0.1 port.

    with Server(env, port) as server: ... server.worker_pids, server.url
    """

    def __init__(self, env: dict[str, str], port: int, *, workers: int = 2) -> None:
        self.env, self.port, self.workers = env, port, workers
        self.url = f"http://127.0.0.1:{port}"
        self._tmp = Path(tempfile.mkdtemp(prefix="keygrant-bench-gunicorn-"))
        self.log = self._tmp / "gunicorn.log"
        self._pids = self._tmp / "workers"
        self._pids.mkdir()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        env = {**self.env, "BENCH_PID_DIR": str(self._pids)}
        command = [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "-w", str(self.workers)]
        command += ["-b", f"127.0.0.1:{self.port}", "-c", str(ROOT / "bench" / "gunicorn_hooks.py")]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_until_answering(f"{self.url}/bench/floor/json", self.process, self.log)
            while len(self.worker_pids) < self.workers:
                time.sleep(0.1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            _stop(self.process)

    @property
    def worker_pids(self) -> list[int]:
        return sorted(int(p.name) for p in self._pids.iterdir())

    def errors_logged(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Traceback" in line or " ERROR " in line]


HAPROXY_CONFIG = """\
global
    nbthread 1
defaults
    mode http
    timeout client 10s
    timeout connect 10s
    timeout server 10s
frontend trivial
    bind 127.0.0.1:{port}
    http-request return status 200 content-type application/json string '{{"ok": true}}'
"""


class TrivialServer:
    """HAProxy answering constant JSON from one thread: the load generator's ceiling is measured on it."""

    def __init__(self, port: int) -> None:
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self._tmp = Path(tempfile.mkdtemp(prefix="keygrant-bench-haproxy-"))
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "TrivialServer":
        config = self._tmp / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.port))
        log = self._tmp / "haproxy.log"
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_until_answering(self.url, self.process, log)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            _stop(self.process)
