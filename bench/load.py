"""The load generator: wrk (C, event loop) with the Lua scripts in bench/lua/.

Every request asks for `Connection: close`, as gunicorn's sync workers close
each connection anyway: one TCP connection per request, against Keygrant,
the floor and the trivial server alike. Latency percentiles are wrk's own.
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.server import SetupError

LUA = Path(__file__).resolve().parent / "lua"


def ensure_tools() -> None:
    """wrk and HAProxy come from Debian; install them when missing."""
    missing = [package for package, binary in (("wrk", "wrk"), ("haproxy", "haproxy")) if not shutil.which(binary)]
    if not missing:
        return
    print(f"Installing {' '.join(missing)} (apt-get)...", flush=True)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], capture_output=True, text=True)
    if done.returncode != 0 or not all(shutil.which(b) for b in missing):
        raise SetupError(
            f"the benchmark needs {' and '.join(missing)} (Debian packages): `apt-get install -y {' '.join(missing)}`"
            f" failed:\n{done.stderr[-1500:]}"
        )


@dataclass
class Result:
    good: int  # answers as expected (for consent: approvals)
    bad: int  # unexpected answers
    lost: int  # consent approvals lost
    answered: int  # every answer, pages included
    seconds: float
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    generator_cpu_s: float = 0.0
    capped: bool = False

    @property
    def rate(self) -> float:
        """Good answers (approvals, for the consent flow) per second."""
        return self.good / self.seconds


def _lua_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid Lua string here (no \u escapes in our values)


def run(
    url: str,
    script: str,
    *,
    seconds: float,
    cap: int,
    connections: int,
    threads: int = 2,
    **params,
) -> Result:
    """One bounded run: stops after `seconds` or `cap` answers, whichever comes first."""
    with tempfile.TemporaryDirectory(prefix="keygrant-bench-wrk-") as tmp:
        stop_dir = Path(tmp, "stopped")
        stop_dir.mkdir()
        settings = {**params, "threads": threads, "cap_per_thread": max(1, cap // threads), "stop_dir": stop_dir}
        preamble = "BENCH = {" + ", ".join(f"{k} = {_lua_value(v)}" for k, v in settings.items()) + "}\n"
        source = preamble + (LUA / "common.lua").read_text() + (LUA / f"{script}.lua").read_text()
        script_path = Path(tmp, f"{script}.lua")
        script_path.write_text(source)
        command = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "30s",
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = subprocess.Popen(
            [*command, "-s", str(script_path), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        capped = False
        try:
            # wrk sleeps out its duration even when every thread has stopped at
            # its cap; the threads leave a file each, and SIGINT ends the wait.
            while process.poll() is None:
                if not capped and len(list(stop_dir.iterdir())) >= threads:
                    capped = True
                    process.send_signal(signal.SIGINT)
                time.sleep(0.05)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in out.splitlines() if line.startswith("BENCH_RESULT ")]
    if process.returncode not in (0, -signal.SIGINT) or not lines:
        raise SetupError(f"wrk failed ({process.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    result = Result(**json.loads(lines[-1].removeprefix("BENCH_RESULT ")))
    result.generator_cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result.capped = capped
    return result


def raw_request(method: str, path: str, headers: dict[str, str] | None = None, body: str = "") -> str:
    """One line of a requests file for cycle.lua."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return "\\r\\n".join(lines) + "\\r\\n\\r\\n" + body


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes (the gunicorn workers), from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total
