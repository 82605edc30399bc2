"""The benchmarks' recorded numbers and the README section made from them.

``bench/pilot_overhead.py --record`` and ``bench/replay_throughput.py --record`` write
``bench/results/<name>.json`` and rewrite the README between ``<!-- bench: performance -->``
and ``<!-- end bench: performance -->`` from those files; a test checks the section still matches
them, so its numbers are the bench's, never typed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
SECTION = "performance"
#: The order rows are shown in (the JSON files keep their keys sorted).
STATES = ("GETJOB", "VALIDATE", "STAGEIN", "RUNNING", "STAGEOUT")
PARTS = ("fork/exec true", "HTTP call", "write+fsync", "tar+gzip log", "adler32 log")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def pilot_table(r: dict[str, Any]) -> str:
    """The pilot bench's numbers: per job from outside, per state, watching, start, SIGTERM."""
    small, large = r["jobs"]
    rows = [
        "| per job | fsm-pilot | floor (same run) | ratio |", "|---|---|---|---|",
        f"| outside-in: (wall of {large} jobs - wall of {small}) / {large - small}, median of {r['repeat']} "
        f"| {r['per_job_ms']:.1f} ms | {r['floor_ms']:.1f} ms (4 HTTP calls + fork/exec of `true`) "
        f"| {r['ratio']:.2f}x |",
        f"| one job's cycle, getJob to next getJob (transition log) | {r['cycle_ms']:.1f} ms | | |",
    ]
    for state in STATES:
        spent, floor = r["states_ms"][state], r["state_floors_ms"].get(state, 0.0)
        rows.append(f"| in {state} (median per job) | {spent:.2f} ms | {floor:.2f} ms | |")
    parts = ", ".join(f"{name} {r['part_floors_ms'][name]:.2f} ms" for name in PARTS)
    rows += [
        f"| RSS while a payload sleeps | {r['rss_mib']:.1f} MiB | {r['bare_rss_mib']:.1f} MiB (python3 importing "
        f"transitions, requests, psutil, structlog) | {r['rss_mib'] / r['bare_rss_mib']:.2f}x |",
        f"| CPU while a payload sleeps | {r['cpu_percent']:.3f} % of a core, {r['threads']} thread(s) | | |",
        f"| start to first getJob | {r['start_ms']:.0f} ms | {r['import_floor_ms']:.0f} ms (the same imports) | |",
    ]
    if "sigterm_update_ms" in r:
        rows.append(f"| SIGTERM to the final update / to exit | {r['sigterm_update_ms']:.0f} ms / "
                    f"{r['sigterm_exit_ms']:.0f} ms (exit {r['exit_code']}) | | |")
    return ("\n".join(rows) + "\n\nA state's floor is the sum of what it physically needs (RUNNING: a fork/exec and "
            "the running update; STAGEOUT: the tarball, its adler32, two write+fsync, the final update), from these "
            f"part floors, median of 21: {parts}.\n")


def replay_table(r: dict[str, Any]) -> str:
    return (f"Replay of a {r['lines']:,}-line transition log ({r['megabytes']:.0f} MB): {r['replay_s']:.2f} s "
            f"({r['lines'] / r['replay_s'] / 1e3:.0f}k lines/s, peak RSS +{r['replay_rss_mb']:.1f} MB; medians of "
            f"{r.get('repeat', 1)} rounds) beside "
            f"{r['floor_s']:.2f} s for reading and JSON-decoding the same file (peak RSS +{r['floor_rss_mb']:.1f} MB): "
            f"{r['ratio']:.2f}x; with the text report {r['text_s']:.2f} s.\n")


def section() -> str:
    """The README's performance section, from the recorded results."""
    pilot, replay = load("pilot_overhead"), load("replay_throughput")
    return (f"On the 2-core development machine, shared with other work (hence the floors measured in the same "
            f"run):\n\n{pilot_table(pilot)}\n{replay_table(replay)}")


def render(text: str) -> str:
    """``text`` with the performance section replaced by what the recorded results say."""
    pattern = re.compile(rf"(<!-- bench: {SECTION} -->\n).*?(<!-- end bench: {SECTION} -->)", re.S)
    match = pattern.search(text)
    if match is None:
        raise ValueError(f"README has no generated section {SECTION!r}")
    return text[:match.start()] + match.group(1) + section() + match.group(2) + text[match.end():]


def write_readme() -> None:
    """Rewrite the README's section from the recorded results."""
    README.write_text(render(README.read_text()))


def record(name: str, data: dict[str, Any]) -> None:
    """Keep ``data`` as the latest results of ``name`` and rewrite the README section."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    if (RESULTS / "pilot_overhead.json").exists() and (RESULTS / "replay_throughput.json").exists():
        write_readme()


if __name__ == "__main__":
    write_readme()
