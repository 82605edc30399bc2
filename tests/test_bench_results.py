"""The README's performance numbers are the benches' recorded results, not typed by hand."""

from __future__ import annotations

from bench import results


def test_readme_performance_section_matches_the_recorded_results() -> None:
    # regenerate with: bench/pilot_overhead.py --record; bench/replay_throughput.py --record
    text = results.README.read_text()
    assert results.render(text) == text
