"""The benchmarks' recorded numbers and the README section made from them.

Each bench in :data:`BENCHES` run with ``--record`` writes ``bench/results/<name>.json`` and
rewrites the README between ``<!-- bench: performance -->`` and ``<!-- end bench: performance -->``
from those files; a test checks the section still matches them, so its numbers are the bench's,
never typed. Every ratio is a time over its floor's, measured in the same run.
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
#: The benches whose recorded results make the section; it is written once all are recorded.
BENCHES = ("pilot_overhead", "replay_throughput", "dispatcher_throughput", "split_jobpars")


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


def dispatcher_table(r: dict[str, Any]) -> str:
    """The dispatcher bench: pairs per second against the same clients' round trips to ``is_alive``."""
    low, high = min(rate for rate, _ in r["per_round"]), max(rate for rate, _ in r["per_round"])
    return (f"Dispatcher, {r['pilots']} pilots ({r['mode']}es) draining {r['jobs']:,} jobs, each a getJob and a final "
            f"updateJob: {r['pairs_per_s']:.0f} pairs/s (median of {r['rounds']} rounds, {low:.0f}-{high:.0f}) beside "
            f"{r['floor_pairs_per_s']:.0f} pairs/s for the same clients making as many requests to `is_alive` "
            f"(no job logic, no database): {r['ratio']:.2f}x the floor's time per pair.\n")


def jobpars_table(r: dict[str, Any]) -> str:
    """The jobPars splitting bench: MB/s by shape against ``str.split``, and the worst case at the size limit."""
    rows = [
        f"| splitting ~{r['mb']:g} MB of jobPars | fsm-pilot | floor: `str.split` (same run) | time ratio "
        f"| `shlex.split` (used before; {r['shlex_kb']} kB, super-linear) |",
        "|---|---|---|---|---|",
    ]
    for shape in r["shapes"]:
        rows.append(f"| {shape['name']} | {shape['mb_per_s']:.1f} MB/s | {shape['floor_mb_per_s']:.1f} MB/s "
                    f"| {shape['floor_mb_per_s'] / shape['mb_per_s']:.1f}x | {shape['shlex_mb_per_s']:.2f} MB/s |")
    worst = r["limit"]
    rows.append(f"| slowest shape at the {worst['bytes']:,}-byte jobPars limit ({worst['shape']}) "
                f"| {worst['ms']:.0f} ms | {worst['floor_ms']:.1f} ms | {worst['ms'] / worst['floor_ms']:.1f}x | |")
    return "\n".join(rows) + f"\n\nEach figure is the best of {r['repeat']} runs (`shlex.split`: one run).\n"


def section() -> str:
    """The README's performance section, from the recorded results."""
    pilot, replay, dispatcher, jobpars = (load(name) for name in BENCHES)
    return (f"On the 2-core development machine, shared with other work (hence the floors measured in the same "
            f"run):\n\n{pilot_table(pilot)}\n{replay_table(replay)}\n{dispatcher_table(dispatcher)}\n"
            f"{jobpars_table(jobpars)}")


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
    if all((RESULTS / f"{bench}.json").exists() for bench in BENCHES):
        write_readme()


if __name__ == "__main__":
    write_readme()
