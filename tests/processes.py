"""Real servers for the fault and multi-instance tests: Redis, PostgreSQL, gunicorn, HAProxy.

Each is a child process of the test, listening on 127.0.0.1 on a free port,
started in a session of its own (so its process group id is its pid) and
stopped by that pid: SIGTERM, then SIGKILL to its group after a timeout.
Nothing here touches a server it did not start. Every wait has a timeout.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, reason: str) -> None:
    """Skip when something a real-server test needs is missing; in CI that is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI must run these tests)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.05) -> float:
    """Poll `check` until it is true; returns the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while True:
        with suppress(Exception):
            if check():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def accepts_connections(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


class Process:
    """One server we started, known by its pid."""

    def __init__(
        self, name: str, command: list[str], *, log: Path, env: dict | None = None, cwd: Path = ROOT, **popen
    ) -> None:
        self.name, self.command, self.log_path, self.env, self.cwd, self.popen = name, command, log, env, cwd, popen
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> "Process":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, whose id is its pid
                **self.popen,
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Signal it by pid and wait; SIGKILL to its process group when it does not exit in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL to its whole process group at once (gunicorn's workers die with their master)."""
        if self.proc is None:
            return
        self._kill_group()
        self.proc.wait(timeout=10)

    def _kill_group(self) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def started(process: Process, *, ready: Callable[[], bool], timeout: float = 30) -> Iterator[Process]:
    process.start()
    try:
        try:
            wait_until(lambda: process.running() and ready(), timeout=timeout, what=f"{process.name} to start")
        except AssertionError:
            raise AssertionError(f"{process.name} did not start:\n{process.log_tail()}") from None
        yield process
    finally:
        process.stop()


# --- Redis ------------------------------------------------------------------------------------------


def redis_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def redis_process(port: int, tmp: Path) -> Process:
    binary = shutil.which("redis-server")
    need(binary is not None, "redis-server is not installed (Debian package redis-server)")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return Process(f"redis-server:{port}", command, log=tmp / f"redis-{port}.log", cwd=tmp)


@contextmanager
def hung_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung cache. Yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True, name="hung-server")
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in held:
            sock.close()
        listener.close()


# --- A private PostgreSQL cluster ------------------------------------------------------------------


def postgres_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """initdb in a temporary folder, a postmaster on 127.0.0.1:<port>: ours to stop and start again.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, in a
    folder of its own under the system's temporary directory (pytest's are private to
    root); `remove()` deletes it. Its log goes to `tmp`.
    """

    def __init__(self, tmp: Path) -> None:
        self.bin = postgres_binaries()
        need(self.bin is not None, "PostgreSQL's server binaries (initdb, postgres) are not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="keygrant-test-pg-"))
        self.log = tmp / "postgres.log"
        self.data, self.sockets = self.dir / "data", self.dir / "sockets"
        self.sockets.mkdir()
        self.port = free_port()
        self.user: dict = {}
        if os.geteuid() == 0:
            import pwd

            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
            os.chown(self.sockets, postgres.pw_uid, postgres.pw_gid)
            self.user = {"user": postgres.pw_uid, "group": postgres.pw_gid, "extra_groups": []}
        self.server: Process | None = None

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def initdb(self) -> None:
        command = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        command += ["--locale=C", "--no-sync"]
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=120, **self.user)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        command = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.sockets}"]
        command += ["-c", "fsync=off", "-c", "max_connections=60"]
        self.server = Process(f"postgres:{self.port}", command, log=self.log, cwd=self.dir, **self.user).start()
        wait_until(self.answers, timeout=30, what="the private PostgreSQL to accept connections")

    def answers(self) -> bool:
        import psycopg

        with psycopg.connect(self.url("postgres"), connect_timeout=1):
            return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, the data is checkpointed."""
        if self.server is not None:
            self.server.stop(sig=signal.SIGINT, timeout=30)
            self.server = None

    def remove(self) -> None:
        """Stop the server and delete the cluster's folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


# --- Keygrant under gunicorn, and HAProxy in front ------------------------------------------------


def keygrant_env(*, database_url: str, cache_url: str, issuer: str, **extra: str) -> dict[str, str]:
    """A production-like environment: DEBUG off, real secrets (shared by all instances), no .env file."""
    import secrets

    from cryptography.fernet import Fernet

    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "ENV_FILE": "/nonexistent/keygrant.env",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OAUTH_ISSUER": issuer,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "CACHE_URL": cache_url,
        "TRUSTED_PROXY_COUNT": "1",  # HAProxy adds X-Forwarded-For
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


_collected = False


def collect_static(env: dict[str, str]) -> None:
    """DEBUG off serves hashed static files from a manifest: collect them once per test run."""
    global _collected
    if not _collected:
        manage(env, "collectstatic", "--noinput", "-v0")
        _collected = True


def http_status(port: int, path: str, *, timeout: float = 2) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def gunicorn_process(port: int, env: dict[str, str], tmp: Path, *, workers: int = 2) -> Process:
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-w", str(workers)]
    command += ["-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--timeout", "30"]
    return Process(f"gunicorn:{port}", command, log=tmp / f"gunicorn-{port}.log", env=env)


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None)


def haproxy_process(*, listen: int, stats: int, apps: list[int], tmp: Path) -> Process:
    """HAProxy running deploy/haproxy.cfg, which reads its addresses from the environment."""
    binary = haproxy_binary()
    need(binary is not None, "HAProxy is not installed (bin/install-haproxy installs Debian's package)")
    assert len(apps) == 2, "deploy/haproxy.cfg names two instances"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KEYGRANT_BIND": f"127.0.0.1:{listen}",
        "KEYGRANT_STATS_BIND": f"127.0.0.1:{stats}",
        "KEYGRANT_APP1": f"127.0.0.1:{apps[0]}",
        "KEYGRANT_APP2": f"127.0.0.1:{apps[1]}",
    }
    command = [binary, "-db", "-f", str(HAPROXY_CONFIG)]
    return Process(f"haproxy:{listen}", command, log=tmp / "haproxy.log", env=env)


def haproxy_states(stats_port: int) -> dict[str, str]:
    """{"keygrant/app1": "UP", "keygrant_live/app2": "DOWN", ...} from HAProxy's CSV statistics."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", stats_port, timeout=2)
    try:
        conn.request("GET", "/stats;csv")
        lines = conn.getresponse().read().decode().splitlines()
    finally:
        conn.close()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        f"{row['pxname']}/{row['svname']}": row["status"]
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


class Deployment:
    """Two Keygrant instances (gunicorn, 2 workers each) behind HAProxy, sharing a database and a cache."""

    def __init__(self, *, balancer: int, stats: int, app_ports: list[int], apps: list[Process], env: dict) -> None:
        self.url = f"http://127.0.0.1:{balancer}"
        self.instances = [f"http://127.0.0.1:{port}" for port in app_ports]
        self.stats, self.apps, self.env = stats, apps, env

    def states(self) -> dict[str, str]:
        return haproxy_states(self.stats)

    def wait_for_states(self, wanted: dict[str, str], *, timeout: float) -> float:
        """Seconds until HAProxy shows each server (e.g. "keygrant/app1") in the wanted state."""

        def reached() -> bool:
            states = self.states()
            return all(states.get(server, "").startswith(state) for server, state in wanted.items())

        return wait_until(reached, timeout=timeout, what=f"HAProxy to show {wanted}", every=0.05)


@contextmanager
def deployment(tmp: Path, *, database_url: str, cache_url: str, **settings: str) -> Iterator[Deployment]:
    """Start both instances and the balancer (deploy/haproxy.cfg); stop all three by pid afterwards."""
    balancer, stats, app_ports = free_port(), free_port(), [free_port(), free_port()]
    env = keygrant_env(
        database_url=database_url, cache_url=cache_url, issuer=f"http://127.0.0.1:{balancer}", **settings
    )
    collect_static(env)
    with ExitStack() as stack:
        apps = [
            stack.enter_context(
                started(gunicorn_process(port, env, tmp), ready=lambda port=port: http_status(port, "/healthz") == 200)
            )
            for port in app_ports
        ]
        proxy = haproxy_process(listen=balancer, stats=stats, apps=app_ports, tmp=tmp)
        stack.enter_context(started(proxy, ready=lambda: accepts_connections(balancer)))
        running = Deployment(balancer=balancer, stats=stats, app_ports=app_ports, apps=apps, env=env)
        running.wait_for_states({"keygrant/app1": "UP", "keygrant/app2": "UP"}, timeout=15)
        yield running
