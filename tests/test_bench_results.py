"""The README's performance numbers are the benches' recorded results, not typed by hand."""

from __future__ import annotations

from bench import results


def test_readme_performance_section_matches_the_recorded_results() -> None:
    # regenerate with --record on: bench/pilot_overhead.py, bench/replay_throughput.py,
    # bench/dispatcher_throughput.py, bench/split_jobpars.py
    text = results.README.read_text()
    assert results.render(text) == text


def test_every_recorded_bench_is_in_the_section() -> None:
    section = results.section()
    assert [(results.RESULTS / f"{name}.json").exists() for name in results.BENCHES] == [True] * 4
    dispatcher, jobpars = results.load("dispatcher_throughput"), results.load("split_jobpars")
    assert f"{dispatcher['pairs_per_s']:.0f} pairs/s" in section
    assert f"{dispatcher['floor_pairs_per_s']:.0f} pairs/s" in section
    for shape in jobpars["shapes"]:
        assert f"| {shape['name']} | {shape['mb_per_s']:.1f} MB/s | {shape['floor_mb_per_s']:.1f} MB/s" in section
    assert f"| {jobpars['limit']['ms']:.0f} ms |" in section
    assert "Measured by hand" not in results.README.read_text()
