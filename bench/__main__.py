"""Keygrant's benchmark: each hot path against a bare-Django floor, in one run. See bench/README.md.

    .venv/bin/python -m bench                   # SQLite, then PostgreSQL
    .venv/bin/python -m bench --db sqlite --seconds 3
    .venv/bin/python -m bench --scale           # PostgreSQL empty, then seeded with millions of rows

Exit status: 0 all targets met, 1 a target ratio or a DESIGN.md property
missed, 2 a set-up error.
"""

import argparse
import json
import os
import platform
import signal
import sys
from pathlib import Path

from bench import load, report
from bench.databases import postgres_database, sqlite_database
from bench.measure import measure_ceiling, measure_database
from bench.server import SetupError

PG_SERVER = "postgres://postgres@127.0.0.1:5432"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--scale", action="store_true", help="PostgreSQL: empty, then millions of rows (slow)")
    parser.add_argument("--scale-users", type=int, default=100_000, help="--scale: users (10 keys, 10 grants each)")
    parser.add_argument("--scale-codes", type=int, default=5_000_000, help="--scale: expired codes")
    parser.add_argument("--seconds", type=int, default=4, help="length of each measured window")
    parser.add_argument("--rounds", type=int, default=3, help="floor/Keygrant pairs per scenario")
    parser.add_argument("--max-requests", type=int, default=50_000, help="request cap of each window")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument(
        "--code-rate", type=int, default=1000, help="token exchanges/s to issue codes for (more: longer seeding)"
    )
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", PG_SERVER), help="PostgreSQL server")
    parser.add_argument("--json", type=Path, help="write the whole report here")
    parser.add_argument("--profile", type=Path, help="also sample one worker with py-spy, stacks to this folder")
    return parser.parse_args()


def _machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    memory_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gb": round(memory_gb, 1), "python": platform.python_version()}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds every `with`: servers stopped, databases dropped


def main() -> int:
    args = _arguments()
    signal.signal(signal.SIGTERM, _on_sigterm)
    machine = _machine()
    print(f"Keygrant benchmark on {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB", flush=True)
    everything: dict = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    missed: list[str] = []
    try:
        load.ensure_tools()
        if args.profile and not (Path(sys.executable).parent / "py-spy").exists():
            raise SetupError("--profile needs py-spy in the venv: .venv/bin/pip install py-spy")
        everything["ceiling"] = ceiling = measure_ceiling(args)
        report.print_ceiling(ceiling)
        plans = []
        if args.scale:
            plans = [("postgres", False), ("postgres", True)]
        else:
            plans = [(kind, False) for kind in (["sqlite", "postgres"] if args.db == "both" else [args.db])]
        empty = None
        for kind, scale in plans:
            print(f"{kind}{' at scale' if scale else ''}: setting up...", flush=True)
            database = sqlite_database() if kind == "sqlite" else postgres_database(args.pg_url)
            with database as db:
                result = measure_database(db, args, scale=scale)
            everything["runs"].append(result)
            report.print_database(result)
            missed += report.missed_targets(result, empty if scale else None)
            if kind == "postgres" and not scale:
                empty = result
    except SetupError as exc:
        print(f"set-up error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was started has been stopped", file=sys.stderr)
        return 130
    finally:
        if args.json:
            args.json.write_text(json.dumps(everything, indent=2, default=str))
    if missed:
        print("\nMISSED:\n  " + "\n  ".join(missed))
        return 1
    print("\nEvery target met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
