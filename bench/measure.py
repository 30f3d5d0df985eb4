"""One database's run: migrate, seed, then every scenario and its floor around one `with Server(...)`."""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench import load
from bench.databases import Database
from bench.load import Result, raw_request
from bench.scenarios import FLOORS, SCENARIOS, SIGNIN, TOKEN_WARM_UP, Inputs, Scenario, token
from bench.server import ROOT, Server, SetupError, TrivialServer, free_port, production_env

WARM_UP_SECONDS = 3
QUIET_CORES, QUIET_WAIT_SECONDS = 0.3, 30


def run_python(env: dict[str, str], *args: str, what: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SetupError(f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def busy_cores(seconds: float = 2.0) -> float:
    """Cores in use by other processes, sampled from /proc/stat while our server is idle."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(values) - values[3] - values[4], sum(values)  # all but idle and iowait

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return round((busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1), 2)


def wait_for_quiet() -> float:
    """Other engineers' test suites share the 2 cores: wait (a while) until they pause. Returns their load."""
    deadline = time.monotonic() + QUIET_WAIT_SECONDS
    while (others := busy_cores(0.5)) > QUIET_CORES and time.monotonic() < deadline:
        time.sleep(1)
    return others


def worker_memory_mb(pids: list[int]) -> dict[str, list[float]]:
    """Each worker's resident memory now (VmRSS) and its peak so far (VmHWM)."""

    def status(pid: int, field: str) -> float:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field + ":"))
        return round(int(line.split()[1]) / 1024, 1)

    return {"rss": [status(p, "VmRSS") for p in pids], "peak": [status(p, "VmHWM") for p in pids]}


def _load(server: Server, prepared: dict, *, seconds: float, cap: int, connections: int) -> dict:
    params = dict(prepared)
    script, cap = params.pop("script"), params.pop("cap", cap)
    cpu_before = load.cpu_seconds(server.worker_pids)
    result = load.run(server.url, script, seconds=seconds, cap=cap, connections=connections, **params)
    worker_cpu = load.cpu_seconds(server.worker_pids) - cpu_before
    return {**vars(result), "rate": result.rate, "worker_cpu_ms": 1000 * worker_cpu / max(result.good, 1)}


def _summary(runs: list[dict]) -> dict:
    good, seconds = sum(r["good"] for r in runs), sum(r["seconds"] for r in runs)
    return {
        "rate": good / seconds,
        "good": good,
        "bad": sum(r["bad"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "worker_cpu_ms": statistics.fmean(r["worker_cpu_ms"] for r in runs),
        "generator_cores": sum(r["generator_cpu_s"] for r in runs) / seconds,
        "capped": any(r["capped"] for r in runs),
        "rounds": runs,
    }


def measure_scenario(server: Server, scenario: Scenario, inputs: Inputs, args) -> dict:
    """Floor and Keygrant back to back, `args.rounds` times, alternating which goes first."""
    sides = [("floor", FLOORS.get(scenario.floor)), ("keygrant", scenario.prepare)]
    runs: dict[str, list[dict]] = {"floor": [], "keygrant": []}
    others = []
    for round_number in range(args.rounds):
        others.append(wait_for_quiet())
        for side, prepare in sides if round_number % 2 == 0 else reversed(sides):
            if prepare is not None:
                prepared = prepare(inputs, args.max_requests)
                runs[side].append(
                    _load(
                        server, prepared, seconds=args.seconds, cap=args.max_requests, connections=scenario.connections
                    )
                )
    result = {"what": scenario.what, "floor_name": scenario.floor, "target": scenario.target, "others_cores": others}
    result["keygrant"] = _summary(runs["keygrant"])
    if runs["floor"]:
        result["floor"] = _summary(runs["floor"])
        # Each round's ratio comes from two adjacent windows; the median ignores
        # a round that another process's burst of work disturbed.
        result["round_ratios"] = [k["rate"] / f["rate"] for k, f in zip(runs["keygrant"], runs["floor"], strict=True)]
        result["ratio"] = statistics.median(result["round_ratios"])
    return result


def warm_up(server: Server, inputs: Inputs) -> None:
    """Imports, templates, URL resolvers and database connections in every worker; not measured."""
    for scenario in SCENARIOS:
        for prepare in (scenario.prepare, FLOORS.get(scenario.floor)):
            if prepare is not None:
                prepared = prepare(inputs, scenario.warm_up)
                _load(server, prepared, seconds=WARM_UP_SECONDS, cap=scenario.warm_up, connections=scenario.connections)


def profile(server: Server, inputs: Inputs, args) -> None:
    """Each scenario once more (not counted), with py-spy sampling one worker: collapsed stacks in args.profile."""
    args.profile.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        out = args.profile / f"{scenario.name}.txt"
        command = ["py-spy", "record", "--nonblocking", "-f", "raw", "-r", "250", "-d", str(args.seconds)]
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / command[0]),
                *command[1:],
                "-p",
                str(server.worker_pids[0]),
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            prepared = scenario.prepare(inputs, args.max_requests)
            _load(server, prepared, seconds=args.seconds, cap=args.max_requests, connections=scenario.connections)
        finally:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(spy.pid, signal.SIGKILL)
                spy.wait()


def measure_purge(server: Server, inputs: Inputs, env: dict[str, str], db: Database, args) -> dict:
    """Token exchange p99 alone, then while `manage.py purge_codes` deletes expired codes in batches."""

    def exchange() -> dict:
        codes = token(inputs, args.max_requests)
        return _load(server, codes, seconds=args.seconds, cap=args.max_requests, connections=4)

    def codes() -> int:
        with psycopg.connect(db.url) as conn:
            return conn.execute("SELECT count(*) FROM oauthprovider_authorizationcode").fetchone()[0]

    alone = exchange()
    before = codes()
    purge = subprocess.Popen(
        [sys.executable, "manage.py", "purge_codes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        time.sleep(1)  # let it reach its batches
        during = exchange()
    finally:
        purge.send_signal(signal.SIGTERM)  # it commits batch by batch: what it deleted stays deleted
        try:
            purge.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(purge.pid, signal.SIGKILL)
            purge.wait()
    return {"alone": alone, "during_purge": during, "codes_purged": before - codes(), "purge_seconds": args.seconds + 1}


def measure_database(db: Database, args, *, scale: bool = False) -> dict:
    port = free_port()
    env = production_env(database_url=db.url, port=port)
    report: dict = {"database": db.version, "kind": db.kind, "scale": scale}
    run_python(env, "manage.py", "migrate", "--noinput", what="migrate")
    run_python(env, "manage.py", "collectstatic", "--noinput", what="collectstatic")
    if scale:
        sizes = ["--users", str(args.scale_users), "--codes", str(args.scale_codes)]
        report["seeding"] = json.loads(run_python(env, "-m", "bench.scale", "seed", *sizes, what="scale seeding"))
    windows = args.rounds + (2 if scale else 0) + (1 if args.profile else 0)
    codes = int(1.2 * args.code_rate * args.seconds * windows) + TOKEN_WARM_UP
    with tempfile.TemporaryDirectory(prefix="keygrant-bench-inputs-") as work:
        started = time.perf_counter()
        run_python(env, "-m", "bench.seed", work, "--codes", str(codes), what="seeding the scenarios' inputs")
        report["inputs_seconds"] = round(time.perf_counter() - started, 1)
        report["codes_issued"] = codes
        if db.kind == "postgres":
            with psycopg.connect(db.url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        with Server(env, port, workers=args.workers) as server:
            inputs = Inputs(Path(work), codes_per_window=int(1.2 * args.code_rate * args.seconds))
            warm_up(server, inputs)
            report["busy_cores_before"] = busy_cores()
            report["scenarios"] = {}
            for scenario in SCENARIOS:
                report["scenarios"][scenario.name] = measure_scenario(server, scenario, inputs, args)
                print(f"  {db.kind}{' scale' if scale else ''}: {scenario.name} done", flush=True)
            report["memory_steady_mb"] = worker_memory_mb(server.worker_pids)
            if args.profile:
                profile(server, inputs, args)
            report["signin"] = _load(
                server, SIGNIN.prepare(inputs, 0), seconds=args.seconds, cap=args.max_requests, connections=2
            )
            report["memory_after_signin_mb"] = worker_memory_mb(server.worker_pids)
            if scale:
                report["purge"] = measure_purge(server, inputs, env, db, args)
            report["busy_cores_after"] = busy_cores()
            report["server_errors"] = server.errors_logged()[-20:]
    if scale:
        report["explain"] = run_python(env, "-m", "bench.explain", what="EXPLAIN")
    return report


def measure_ceiling(args) -> dict:
    """wrk against a trivial server, same connections and connection behaviour: what the generator can do."""
    with tempfile.TemporaryDirectory(prefix="keygrant-bench-ceiling-") as work:
        requests_file = Path(work, "trivial.requests")
        requests_file.write_text(raw_request("GET", "/") + "\n")
        with TrivialServer(free_port()) as trivial:
            result: Result = load.run(
                trivial.url,
                "cycle",
                seconds=args.seconds,
                cap=10**9,
                connections=4,
                requests_file=str(requests_file),
                expect_status=200,
            )
    return {**vars(result), "rate": result.rate, "generator_cores": result.generator_cpu_s / result.seconds}
