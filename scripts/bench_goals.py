#!/usr/bin/env python3
"""Collects the goal lines of a `scripts/bench.sh` run into one table.

Reads each bench's output for `goal: WHAT | MEASURED | GOAL | verdict` lines,
adds the goals measured by criterion alone (the mean of each matching id, from
criterion's own estimates), prints a Markdown table, and with --readme puts it
between the `<!-- bench:goals:begin -->` / `<!-- bench:goals:end -->` markers.
Exits 1 if any goal is not met.
"""

import argparse
import json
import pathlib
import re
import sys

BEGIN = "<!-- bench:goals:begin -->"
END = "<!-- bench:goals:end -->"


def goal_lines(log: pathlib.Path):
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("goal: "):
            parts = [p.strip() for p in line[len("goal: "):].split("|")]
            if len(parts) == 4:
                yield parts


def criterion_means(root: pathlib.Path, since: float):
    """{full id: mean in ms} for every benchmark criterion measured after `since`."""
    means = {}
    for bench in root.glob("**/new/benchmark.json"):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists() or estimates.stat().st_mtime < since:
            continue
        full_id = json.loads(bench.read_text()).get("full_id", "")
        mean_ns = json.loads(estimates.read_text())["mean"]["point_estimate"]
        means[full_id] = mean_ns / 1e6
    return means


def criterion_goals(spec: pathlib.Path, means):
    for row in spec.read_text().splitlines():
        if not row.strip():
            continue
        what, pattern, worst, limit, unit = row.split("|")
        found = [m for i, m in means.items() if re.search(pattern, i)]
        if not found:
            continue
        measured = max(found) if worst == "max" else min(found)
        value = measured / 1000 if unit == "s" else measured
        met = value <= float(limit)
        yield [what, f"{value:.2f} {unit}", f"≤ {limit} {unit}", "met" if met else "NOT MET"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--criterion", required=True)
    ap.add_argument("--criterion-goals", required=True)
    ap.add_argument("--readme")
    ap.add_argument("benches", nargs="*")
    args = ap.parse_args()

    rows = []
    for bench in args.benches:
        log = pathlib.Path(args.logs) / f"{bench}.log"
        if log.exists():
            rows.extend(goal_lines(log))
    root = pathlib.Path(args.criterion)
    if root.exists():
        # `.start` is written before the first bench runs.
        since = (pathlib.Path(args.logs) / ".start").stat().st_mtime - 1
        means = criterion_means(root, since)
        rows.extend(criterion_goals(pathlib.Path(args.criterion_goals), means))

    table = ["| what | measured | goal | |", "|---|---|---|---|"]
    table += [f"| {w} | {m} | {g} | {v} |" for w, m, g, v in rows]
    text = "\n".join(table)
    print(text)
    if args.readme:
        path = pathlib.Path(args.readme)
        readme = path.read_text()
        if BEGIN not in readme or END not in readme:
            sys.exit(f"{path}: no {BEGIN} … {END} markers in the Performance section")
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    missed = [r for r in rows if r[3] != "met"]
    for r in missed:
        print(f"NOT MET: {r[0]}: {r[1]} (goal {r[2]})", file=sys.stderr)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
