"""Run the reliability campaign and write docs/reliability.md from what it measured.

``python -m tests.reliability.report [--scale full|small] [--output FILE] [PYTEST ARGS...]``
(``make reliability`` runs it at full size). Each campaign test appends its ledger (runs,
checks and violations per invariant, seed, facts) to a results file; pytest's JUnit
XML gives each test's outcome (a known defect is an expected failure until its fix is
merged). The page is generated from those two files only: never edit it by hand.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_campaign(scale: str, results: Path, junit: Path, extra: list[str]) -> int:
    env = {**os.environ, "FSM_RELIABILITY_SCALE": scale, "FSM_RELIABILITY_RESULTS": str(results)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
           "tests/reliability", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def outcomes(junit: Path) -> dict[str, str]:
    """Test id -> passed / failed / expected failure (known defect) / skipped, from the JUnit XML."""
    found: dict[str, str] = {}
    if not junit.exists():
        return found
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            found[name] = "failed"
        elif skipped is not None:
            found[name] = "expected failure" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            found[name] = "passed"
    return found


def _merge(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Ledgers of the same class (parametrized tests) added up."""
    classes: dict[str, dict[str, Any]] = {}
    for rec in records:
        merged = classes.setdefault(rec["class"], {"runs": 0, "checks": defaultdict(int),
                                                   "violations": defaultdict(int), "seeds": [], "tests": [],
                                                   "examples": {}, "facts": [], "incomplete": 0})
        merged["runs"] += rec["runs"]
        for key, count in rec["checks"].items():
            merged["checks"][key] += count
        for key, count in rec["violations"].items():
            merged["violations"][key] += count
        merged["seeds"].append(rec["seed"])
        merged["tests"].append(rec["test"])
        merged["incomplete"] += not rec["complete"]
        for key, examples in rec["examples"].items():
            merged["examples"].setdefault(key, examples[:1])
        if rec["facts"]:
            merged["facts"].append(rec["facts"])
    return classes


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")[:300]


def _known_defects(tests: dict[str, str]) -> list[str]:
    """The note on expected failures, only when a test is one (a stale note would claim an open defect)."""
    known = sum(outcome == "expected failure" for outcome in tests.values())
    if not known:
        return []
    return [f"{known} test(s) marked *expected failure* reproduce a known defect whose fix is not merged yet; "
            "their violations are counted below."]


def render(classes: dict[str, dict[str, Any]], tests: dict[str, str], scale: str, seconds: float,
           namespaces: str) -> str:
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Reliability campaign", "",
             f"Written by `tests/reliability/report.py` (`make reliability`) on {today}: scale `{scale}`, "
             f"{seconds:.0f} s, PID namespaces: {namespaces}. Generated: do not edit by hand.", "",
             *_known_defects(tests),
             "Replay a class with `FSM_RELIABILITY_SEED=<seed> "
             f"FSM_RELIABILITY_SCALE={scale} .venv/bin/python -m pytest tests/reliability/...`.", "",
             "| class | runs | checks | violations | seeds | tests |", "|---|---:|---:|---:|---|---|"]
    for name, merged in sorted(classes.items()):
        outcome = ", ".join(f"{tests.get(t, 'not run')}" for t in merged["tests"])
        lines.append(f"| {name} | {merged['runs']} | {sum(merged['checks'].values())} | "
                     f"{sum(merged['violations'].values())} | {', '.join(map(str, merged['seeds']))} | {outcome} |")
    lines += ["", "## Violations per invariant", ""]
    for name, merged in sorted(classes.items()):
        lines += [f"### {name}", "", "| invariant | checks | violations | first example |", "|---|---:|---:|---|"]
        for key in merged["checks"]:
            example = (merged["examples"].get(key) or [""])[0]
            lines.append(f"| {key} | {merged['checks'][key]} | {merged['violations'][key]} | {_cell(example)} |")
        if merged["incomplete"]:
            lines.append(f"\n{merged['incomplete']} run(s) of this class stopped before the end (see the log).")
        if merged["facts"]:
            lines += ["", "Facts: " + "; ".join(_cell(json.dumps(f, sort_keys=True)) for f in merged["facts"][:6])]
        lines.append("")
    lines += ["## Tests", "", "| test | outcome |", "|---|---|"]
    lines += [f"| `{test}` | {outcome} |" for test, outcome in sorted(tests.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("small", "full"), default="full")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    ns, extra = parser.parse_known_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.reliability.sandbox import pidns_problem

    problem = pidns_problem()
    with tempfile.TemporaryDirectory(prefix="fsm-reliability-") as tmp:
        results, junit = Path(tmp) / "results.jsonl", Path(tmp) / "junit.xml"
        started = time.monotonic()
        code = run_campaign(ns.scale, results, junit, extra)
        lines = results.read_text().splitlines() if results.exists() else []
        classes = _merge([json.loads(line) for line in lines if line.strip()])
        page = render(classes, outcomes(junit), ns.scale, time.monotonic() - started,
                      "yes" if problem is None else f"no ({problem})")
    ns.output.parent.mkdir(parents=True, exist_ok=True)
    ns.output.write_text(page)
    print(f"wrote {ns.output} ({len(classes)} classes); pytest exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
