"""The jobPars splitter gives exactly shlex.split's words and errors, and does its work in bulk."""

from __future__ import annotations

import gc
import shlex
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsm_pilot import wordsplit
from fsm_pilot.command import MAX_JOB_PARS_BYTES, split_job_pars
from fsm_pilot.errors import PilotError, PilotFailure

#: Characters that matter to the rules, plus look-alikes that do not (vertical tab, NBSP, unicode).
SHELLISH = st.sampled_from([" ", "\t", "\r", "\n", "'", '"', "\\", "a", "b", "é", "€", "😀", "\x0b", "\xa0",
                            "\x00", "$", "`", "#", ";", "\ufdd0"])


def _outcome(split: Callable[[str], list[str]], text: str) -> list[str] | tuple[str, str]:
    """The words, or the error's type and message."""
    try:
        return split(text)
    except ValueError as exc:
        return type(exc).__name__, str(exc)


def _same_as_shlex(text: str) -> None:
    assert _outcome(wordsplit.split, text) == _outcome(shlex.split, text), repr(text)


@settings(max_examples=2000, derandomize=True)
@given(st.text(SHELLISH, max_size=40))
def test_same_as_shlex_on_shell_characters(text: str) -> None:
    _same_as_shlex(text)


@settings(max_examples=500, derandomize=True)
@given(st.text(max_size=60))
def test_same_as_shlex_on_any_text(text: str) -> None:
    _same_as_shlex(text)


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.sampled_from(["'x y'", '"a\\"b"', "\\ ", "''", '""', "w", " ", "\t\n", '"\\\\"', "\\\\",
                                 "'\\'", '"$`\\x"']), max_size=30))
def test_same_as_shlex_on_well_formed_pieces(pieces: list[str]) -> None:
    _same_as_shlex("".join(pieces))


@pytest.mark.parametrize("text", [
    "", " ", " \t\r\n ", "a", "  a  b  ", "''", '""', "'' ''", "a '' b", "''a", "a''", '""""', "'a'\"b\"c",
    "a\\\nb", "\\\n", "a\tb\nc\rd", "a\x0bb", "a\xa0b", "é 😀 'ü ß'", "\\a\\b\\ c", "'\\'", '"\\a\\"\\\\"',
    '"\\\n"', '"a""b"', "'a''b'", '"it\'s"', "'say \"hi\"'", "-c 'echo $HOME; ls | wc' > out",
    "\\\\", "a\\ ", "\\ ", " \\  ", "\x00 \x01 \x02 \ufdd0 \ufdd1 'a b' \"c\\\"d\"", "\\a\\b\\c\\d" * 3,
])
def test_same_as_shlex_on_chosen_cases(text: str) -> None:
    _same_as_shlex(text)


@pytest.mark.parametrize(("text", "message"), [
    ("'unclosed", "No closing quotation"), ('"unclosed', "No closing quotation"), ("a 'b' 'c", "No closing quotation"),
    ("trailing\\", "No escaped character"), ('"inside\\', "No escaped character"), ('"a\\"', "No closing quotation"),
    ('"a\\\\', "No closing quotation"), ('"a\\\\\\', "No escaped character"), ("\\", "No escaped character"),
    ("'\\", "No closing quotation"), ("\"'", "No closing quotation"),
])
def test_unbalanced_input_raises_what_shlex_raises(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shlex.split(text)
    with pytest.raises(ValueError, match=message):
        wordsplit.split(text)


def test_words_of_a_large_text_are_shlex_words() -> None:
    text = " ".join(["--in=a.root", "'x y'", '"q\\"r"', "e\\ f", "''"] * 20_000)
    assert wordsplit.split(text) == ["--in=a.root", "x y", 'q"r', "e f", ""] * 20_000


def _profile_events(text: str) -> int:
    """How many calls the splitter makes from Python code (C calls made by C, e.g. map's, are not seen)."""
    events = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal events
        events += 1

    gc.collect()  # no collection (and no finalizer of an earlier test's objects) may run while counting
    gc.disable()
    sys.setprofile(count)
    try:
        wordsplit.split(text)
    finally:
        sys.setprofile(None)
        gc.enable()
    return events


def test_the_work_is_done_in_bulk_not_per_character_or_word() -> None:
    unit = "--opt=v 'q u o t e d' \"d\\\"q\" e\\ s\\ c ''"
    small, large = unit * 10, unit * 20_000
    assert _profile_events(large) == _profile_events(small)


def test_job_pars_at_the_limit_is_split_and_one_byte_more_is_refused() -> None:
    at_limit = "ab " * (MAX_JOB_PARS_BYTES // 3) + "x" * (MAX_JOB_PARS_BYTES % 3)
    assert len(at_limit.encode()) == MAX_JOB_PARS_BYTES
    assert len(split_job_pars(at_limit)) == MAX_JOB_PARS_BYTES // 3 + 1
    with pytest.raises(PilotFailure) as refused:
        split_job_pars(at_limit + "é")  # two UTF-8 bytes: the limit counts bytes, not characters
    assert refused.value.error == PilotError.CONVERSIONFAILURE
    assert refused.value.diag == (f"jobPars is {MAX_JOB_PARS_BYTES + 2} bytes, "
                                  f"over the {MAX_JOB_PARS_BYTES} byte limit")


@pytest.mark.parametrize(("job_pars", "diag"), [
    ("-c 'unbalanced", "jobPars cannot be split into words: No closing quotation"),
    ("-c true\\", "jobPars cannot be split into words: No escaped character"),
    ("-c 'a\x00b'", "jobPars holds a NUL character (at 5), which no argument can carry"),
])
def test_job_pars_that_cannot_be_an_argv_is_a_conversion_failure(job_pars: str, diag: str) -> None:
    with pytest.raises(PilotFailure) as refused:
        split_job_pars(job_pars)
    assert (refused.value.error, refused.value.diag) == (PilotError.CONVERSIONFAILURE, diag)
