"""What a run prints, and what it counts as missed (exit status 1)."""

SCALE_TOLERANCE = 0.10  # each ratio at scale within 10% of the empty database's


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def print_ceiling(ceiling: dict) -> None:
    print(
        f"Generator ceiling (wrk -> HAProxy constant JSON, 4 connections, a new TCP connection per request): "
        f"{ceiling['rate']:,.0f} req/s, p99 {_ms(ceiling['p99_ms'])} ms, "
        f"wrk used {ceiling['generator_cores']:.2f} cores",
        flush=True,
    )


def print_database(report: dict) -> None:
    title = f"{report['database']}{' at scale' if report['scale'] else ''}"
    print(
        f"\n== {title}: other processes used {report['busy_cores_before']} cores before, "
        f"{report['busy_cores_after']} after =="
    )
    print(
        f"{'scenario':11} {'Keygrant/s':>10} {'floor':>16} {'floor/s':>8} {'ratio':>6} {'target':>6}"
        f"  {'p50 / p99 ms':>14}  {'CPU ms/req':>10}  {'wrk cores':>9}  notes"
    )
    for name, s in report["scenarios"].items():
        kg = s["keygrant"]
        floor = s.get("floor")
        notes = []
        if kg["bad"] or kg["socket_errors"]:
            notes.append(f"{kg['bad']} unexpected answers, {kg['socket_errors']} socket errors")
        if name == "consent":
            approvals = kg["good"] + kg["lost"]
            notes.append(f"{kg['lost']} of {approvals} approvals lost")
        if kg["capped"]:
            notes.append("request cap reached")
        if "round_ratios" in s:
            notes.append("rounds " + " ".join(f"{r:.2f}" for r in s["round_ratios"]))
        if max(s["others_cores"]) > 0.3:
            notes.append(f"others used up to {max(s['others_cores'])} cores just before a round")
        print(
            f"{name:11} {kg['rate']:10.1f} {s['floor_name'] or '-':>16} {floor['rate'] if floor else 0:8.1f}"
            f" {s.get('ratio', 0):6.2f} {s['target'] or '-':>6}"
            f"  {_ms(kg['p50_ms']):>6} / {_ms(kg['p99_ms']):>5}  {kg['worker_cpu_ms']:10.2f}"
            f"  {kg['generator_cores']:9.2f}  {'; '.join(notes)}"
        )
    steady, after = report["memory_steady_mb"], report["memory_after_signin_mb"]
    signin = report["signin"]
    print(
        f"memory per worker: steady RSS {steady['rss']} MB (peak so far {steady['peak']} MB); "
        f"after {signin['good']} sign-ins ({signin['rate']:.1f}/s): RSS {after['rss']} MB, peak {after['peak']} MB"
    )
    if "purge" in report:
        purge = report["purge"]
        print(
            f"token exchange p99 {_ms(purge['alone']['p99_ms'])} ms alone ({purge['alone']['rate']:.0f}/s), "
            f"{_ms(purge['during_purge']['p99_ms'])} ms while purge_codes ran ({purge['during_purge']['rate']:.0f}/s;"
            f" it deleted {purge['codes_purged']:,} codes in {purge['purge_seconds']:.0f} s)"
        )
    if "seeding" in report:
        seeding = report["seeding"]
        tables = ", ".join(
            f"{t} {v['rows']:,} rows in {v['seconds']} s" for t, v in seeding.items() if t != "total_seconds"
        )
        print(f"seeded by COPY in {seeding['total_seconds']} s: {tables}")
    if "explain" in report:
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the hot paths' statements:\n\n" + report["explain"])
    if report["server_errors"]:
        print("server errors:\n  " + "\n  ".join(report["server_errors"]))


def missed_targets(report: dict, empty: dict | None = None) -> list[str]:
    """Target ratios and DESIGN.md properties; `empty` is the empty database's report for a scale run."""
    title = f"{report['database']}{' at scale' if report['scale'] else ''}"
    missed = []
    for name, s in report["scenarios"].items():
        kg = s["keygrant"]
        if s["target"] is not None and s["ratio"] < s["target"]:
            missed.append(f"{title} {name}: {s['ratio']:.2f} x {s['floor_name']} < {s['target']}")
        if kg["lost"]:
            missed.append(f"{title} {name}: {kg['lost']} approvals lost (DESIGN.md: pending requests never overwrite)")
        if kg["bad"] or kg["socket_errors"] or s.get("floor", {}).get("bad"):
            missed.append(f"{title} {name}: {kg['bad']} unexpected answers, {kg['socket_errors']} socket errors")
        if empty is not None and "ratio" in s:
            base = empty["scenarios"][name]["ratio"]
            if abs(s["ratio"] - base) > SCALE_TOLERANCE * base:
                missed.append(f"{title} {name}: ratio {s['ratio']:.2f} is not within 10% of {base:.2f} (empty)")
    if report["signin"]["bad"]:
        missed.append(f"{title} sign-in: {report['signin']['bad']} failed")
    if report["server_errors"]:
        missed.append(f"{title}: the server logged errors")
    return missed
