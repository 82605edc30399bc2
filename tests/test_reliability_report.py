"""docs/reliability.md speaks of known defects only when the campaign had an expected failure."""

from __future__ import annotations

from tests.reliability.report import render


def test_no_known_defect_note_when_every_test_passed() -> None:
    page = render({}, {"tests/reliability/test_a.py::test_x": "passed"}, "small", 1.0, "yes")
    assert "expected failure" not in page.split("## Tests")[0] and "Replay a class" in page


def test_the_note_counts_the_expected_failures() -> None:
    tests = {"t::a": "expected failure", "t::b": "passed", "t::c": "expected failure"}
    page = render({}, tests, "small", 1.0, "yes")
    assert "2 test(s) marked *expected failure*" in page
