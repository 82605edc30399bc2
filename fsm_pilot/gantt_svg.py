"""``fsm-pilot replay LOG --format svg``: the run's timeline as a self-contained SVG gantt chart.

One row for the pilot's own states, one per job; each stay in a state is a bar
coloured by state, long enough to read on a post-mortem page or in an issue
tracker. Written by hand (no Graphviz, no browser), deterministic for a log.
A chart is for people, so past ``MAX_BARS`` bars the rest is summarised.
"""

from __future__ import annotations

from html import escape
from typing import TextIO

from fsm_pilot.replay import Report
from fsm_pilot.replay_cli import Renderer
from fsm_pilot.timeline import Bar

MAX_BARS = 20_000
WIDTH, LABEL, ROW, TOP = 1200, 110, 26, 40
COLOURS = {
    "INIT": "#9e9e9e", "QUEUEDATA": "#90caf9", "CHECKS": "#64b5f6", "RECOVERY": "#ba68c8", "CLEANUP": "#ce93d8",
    "GETJOB": "#ffd54f", "VALIDATE": "#ffb74d", "STAGEIN": "#4db6ac", "RUNNING": "#81c784", "STAGEOUT": "#4dd0e1",
    "ABORTING": "#e57373", "EXIT": "#424242", "FAILED": "#c62828", "ABORTED": "#b71c1c",
}


class SvgGanttRenderer(Renderer):
    """Collects the bars while the log is replayed, draws them at the end."""

    def __init__(self, out: TextIO, log: str) -> None:
        super().__init__(out, log)
        self.bars: list[Bar] = []
        self.dropped = 0

    def bar(self, item: Bar) -> None:
        if len(self.bars) < MAX_BARS:
            self.bars.append(item)
        else:
            self.dropped += 1

    def end(self, report: Report) -> None:
        rows = ["pilot", *dict.fromkeys(f"job {b.owner}" for b in self.bars if b.owner is not None)]
        height = TOP + ROW * len(rows) + 60
        self.out.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
                       f'font-family="sans-serif" font-size="11">\n'
                       f'<text x="4" y="16" font-size="13">{escape(self.log)}</text>\n')
        for i, row in enumerate(rows):
            self.out.write(f'<text x="4" y="{TOP + ROW * i + 16}">{escape(row)}</text>\n')
        self._bars(rows)
        verdict = report.verdict
        code = "none" if report.exit_code is None else report.exit_code
        footer = f"{verdict.status} at seq {verdict.seq}: {verdict.why}; exit code {code}"
        if self.dropped:
            footer += f" ({self.dropped} more bars not drawn)"
        self.out.write(f'<text x="4" y="{height - 16}">{escape(footer)}</text>\n</svg>\n')

    def _bars(self, rows: list[str]) -> None:
        if not self.bars:
            return
        start = min(b.start for b in self.bars)
        span = max(b.start + b.seconds for b in self.bars) - start or 1.0
        scale = (WIDTH - LABEL - 10) / span
        for bar in self.bars:
            row = rows.index("pilot" if bar.owner is None else f"job {bar.owner}")
            x, y = LABEL + (bar.start - start) * scale, TOP + ROW * row + 3
            w = max(1.0, bar.seconds * scale)
            title = f"{bar.state}: {bar.seconds:.3f} s (seq {bar.seq})"
            self.out.write(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 8}" '
                           f'fill="{COLOURS.get(bar.state, "#bdbdbd")}"><title>{escape(title)}</title></rect>\n')
            if w > 60:
                self.out.write(f'<text x="{x + 3:.1f}" y="{y + 13}">{escape(bar.state)}</text>\n')
