"""Baton's figures beside the peers': one table and bench/results/latest.json.

Reads the driver's JSON for each Baton store and, when given, the peer
harness's peers.json (the same field names); prints a markdown table with
each system's figures, Baton's ratio to the best peer per metric and the
target, and writes one object per system.
"""

import argparse
import datetime
import json

# (field, label, format, higher is better, target as a function of the best peer)
METRICS = [
    ("jobs_per_s", "throughput, jobs/s", "{:,.0f}", True, lambda best: ("≥ 2× best peer", 2 * best)),
    ("executions_per_s", "one-step executions/s", "{:,.0f}", True, None),
    ("wake_ms_p50", "wake-up p50, ms", "{:.2f}", False, lambda best: ("≤ 1 ms", 1.0)),
    ("wake_ms_p99", "wake-up p99, ms", "{:.2f}", False, None),
    ("retry_total_s", "retry run (2,000 × 3, no delay), s", "{:.2f}", False,
     lambda best: ("≤ ½ best peer", best / 2)),
    ("retry_error_ms_p50", "retry lateness at 100 ms, p50 ms", "{:.1f}", False, None),
    ("retry_error_ms_p99", "retry lateness at 100 ms, p99 ms", "{:.1f}", False,
     lambda best: ("≤ 10 ms", 10.0)),
    ("cpu_ms_per_job", "CPU per job, ms (all processes)", "{:.3f}", False,
     lambda best: ("< best peer", best)),
    ("rss_mb", "RSS, MB (Baton: broker, 10,000 leased)", "{:.0f}", False,
     lambda best: ("≤ 64 MB", 64.0)),
]


def baton_row(system: str, raw: dict) -> dict:
    """One system's figures from the driver's output."""
    t, w = raw.get("throughput", {}), raw.get("wake", {})
    rz, rt, m = raw.get("retry_zero", {}), raw.get("retry_timing", {}), raw.get("memory", {})
    row = {
        "system": system,
        "jobs_per_s": t.get("jobs_per_s"),
        "executions_per_s": raw.get("executions", {}).get("executions_per_s"),
        "wake_ms_p50": w.get("wake_ms_p50"),
        "wake_ms_p99": w.get("wake_ms_p99"),
        "retry_total_s": rz.get("retry_total_s"),
        "retry_exactly_3x": rz.get("retry_exactly_3x"),
        "retry_error_ms_p50": rt.get("retry_error_ms_p50"),
        "retry_error_ms_p99": rt.get("retry_error_ms_p99"),
        "cpu_ms_per_job": t.get("cpu_ms_per_job"),
        "rss_mb": m.get("rss_mb"),
        "detail": raw,
    }
    return row


def fmt(value, spec: str) -> str:
    return "–" if value is None else spec.format(value)


def table(rows: list, peers: list) -> str:
    names = [r["system"] for r in rows]
    head = "| metric | " + " | ".join(names) + " | Baton ÷ best peer | target | met |"
    out = [head, "|" + " --- |" * (len(names) + 4)]
    baton = rows[0]
    for field, label, spec, higher, target in METRICS:
        cells = [fmt(r.get(field), spec) for r in rows]
        values = [p[field] for p in peers if p.get(field) is not None]
        best = (max if higher else min)(values) if values else None
        mine = baton.get(field)
        ratio = f"{mine / best:.2f}" if best and mine is not None else "–"
        goal, met = "–", "–"
        if target and (best is not None or field in ("wake_ms_p50", "retry_error_ms_p99", "rss_mb")):
            goal, bound = target(best or 0.0)
            if mine is not None:
                ok = mine >= bound if higher else (mine < bound if goal.startswith("<") else mine <= bound)
                met = "yes" if ok else "no"
        out.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} | {goal} | {met} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baton", required=True)
    ap.add_argument("--sqlite", required=True)
    ap.add_argument("--peers")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--settings", required=True)
    ap.add_argument("--quick", type=int, default=0)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    rows = [baton_row("baton", json.load(open(a.baton))),
            baton_row("baton-sqlite", json.load(open(a.sqlite)))]
    peers = json.load(open(a.peers)) if a.peers else []
    context = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": open(a.machine).read().strip().splitlines(),
        "settings": {
            "postgres": open(a.settings).read().split(),
            "quick": bool(a.quick),
            "jobs": 2_000 if a.quick else 20_000,
        },
    }
    systems = [{**r, **context} for r in rows + peers]
    with open(a.json, "w") as f:
        json.dump(systems, f, indent=1)
        f.write("\n")
    print(f"{context['date']} · {' · '.join(context['machine'])}\n")
    print(table(rows + peers, peers))
    sqlite = rows[1].get("jobs_per_s")
    if sqlite is not None:
        met = "yes" if sqlite >= 10_000 else "no"
        print(f"\nbaton-sqlite throughput: {sqlite:,.0f} jobs/s (target ≥ 10,000: {met})")


if __name__ == "__main__":
    main()
