"""``shlex.split`` (POSIX mode, no comments) in linear time.

``shlex`` reads one character at a time and grows each word with ``+=`` on an
attribute, which is quadratic in the word's length: a few MB of ``jobPars``
took minutes, during which the pilot answered no signal. This splitter gives
exactly the same words and errors with a handful of regex and string
operations that each run in C over the whole text, so its cost is linear.

The rules (those of ``shlex.split``): words are separated by runs of space,
tab, CR or LF; outside quotes a backslash makes the next character literal
(backslash-newline is a newline); inside single quotes everything is literal;
inside double quotes a backslash escapes only ``"`` and ``\\`` and is kept
before anything else; quoted parts join the word around them, so ``''`` is
an empty word. An unclosed quote is "No closing quotation", a backslash at the
very end (also inside double quotes) "No escaped character".

How: one ``re.split`` cuts the text at its quoted parts and escapes, capturing
their content; in the plain text between them each whitespace run becomes a
separator character that the text does not contain; everything is joined and
split on that separator. Parts of one kind are decoded together: joined with
another unused character, rewritten by one C call, split again. Each pattern
is unambiguous, so the regex engine looks at a character at most twice.

The one difference from shlex: a text that holds all 1,114,112 Unicode
characters but one (so over a million characters long) leaves no separator
and is a ValueError; jobPars is limited to 1 MiB before it gets here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from itertools import islice
from typing import cast

#: A possessive loop (Python 3.11+) keeps no backtracking state per turn, so
#: a long double-quoted part or run of escapes takes no memory in the engine;
#: the patterns never need to backtrack into a loop anyway.
_LOOP = "*+" if sys.version_info >= (3, 11) else "*"

#: Each alternative starts with its literal, so the engine skips plain text
#: fast. Groups: single-quoted content, double-quoted content (still escaped),
#: a run of escaped characters without its first backslash (``a\b\c``), and
#: the rest of the text after an unclosed single quote. An unclosed double
#: quote or a final backslash takes the rest of the text with no group.
_SPECIAL = re.compile(
    r"""'([^']*)'"""
    r'''|"([^"\\]*(?:\\[\s\S][^"\\]*)''' + _LOOP + r''')"'''
    r"""|\\([\s\S](?:\\[\s\S])""" + _LOOP + r""")"""
    r"""|'([\s\S]*)\Z|"[\s\S]*\Z|\\\Z"""
)
_STRIDE = 5  # the plain text before a match, then its 4 groups
_DOUBLE, _ESCAPED = 2, 3

#: The characters that separate words (shlex's; not other Unicode whitespace).
_WHITESPACE = " \t\r\n"

#: Inside double quotes only ``\"`` and ``\\`` lose their backslash.
_DOUBLE_QUOTED_ESCAPE = re.compile(r'\\(["\\])')

#: Characters tried first as markers (a jobPars practically never holds them); else any unused ones.
_CANDIDATES = ("\x00", "\x01", "\x02", "\x03", "\ufdd0", "\ufdd1")


def split(text: str) -> list[str]:
    """The words of ``text`` exactly as ``shlex.split(text)`` gives them; ValueError as it raises."""
    parts: list[str | None] = _SPECIAL.split(text)
    if len(parts) > 1:
        _raise_if_unclosed(text, *parts[-_STRIDE:-1])
    separator, joint = _unused(text)
    plain = cast("list[str]", parts[::_STRIDE])  # the text between matches is never None
    ends_with_run = plain[-1][-1:] in _WHITESPACE and plain[-1] != ""
    parts[::_STRIDE] = _separated(joint.join(plain), separator).split(joint)
    if "\\" in text:
        _decode(parts, _DOUBLE, _unescape_double_quoted, joint)
        _decode(parts, _ESCAPED, _unescape_run, joint, width=3)
    words = "".join(filter(None, parts)).split(separator)
    if text[:1] in _WHITESPACE:  # a leading run (or the empty text): no word before it
        del words[0]
    if ends_with_run:  # no word after it
        del words[-1]
    return words


def _separated(plain: str, separator: str) -> str:
    """Each run of whitespace in ``plain`` (text outside quotes) as one ``separator``."""
    for space in _WHITESPACE:
        plain = plain.replace(space, separator)
    if separator * 2 not in plain:
        return plain
    return re.sub(re.escape(separator) + "{2,}", separator, plain)


def _raise_if_unclosed(text: str, single: str | None, double: str | None, escaped: str | None,
                       single_rest: str | None) -> None:
    """The last match's groups: an unclosed quote or a final backslash is the error shlex raises.

    Matched without a group, the rest is an unclosed double quote or a final backslash: it ends in
    the escape state exactly when the text ends with an odd run of backslashes.
    """
    if single_rest is not None:
        raise ValueError("No closing quotation")
    if single is None and double is None and escaped is None:
        trailing_backslashes = len(text) - len(text.rstrip("\\"))
        raise ValueError("No escaped character" if trailing_backslashes % 2 else "No closing quotation")


def _unused(text: str) -> tuple[str, str]:
    """Two characters that do not occur in ``text`` (decoding only removes characters)."""
    free = [c for c in _CANDIDATES if c not in text]
    if len(free) < 2:
        used = set(text)
        free = list(islice((c for c in map(chr, range(0x110000)) if c not in used), 2))
    if len(free) < 2:
        raise ValueError("the text holds all Unicode characters but one: no separator is left")
    return free[0], free[1]


def _unescape_double_quoted(content: str) -> str:
    return "".join(_DOUBLE_QUOTED_ESCAPE.split(content))


def _unescape_run(run: str) -> str:
    """``a\\b\\c`` (a run of escapes without its first backslash) -> ``abc``."""
    return run[::2]


def _decode(parts: list[str | None], group: int, transform: Callable[[str], str], joint: str,
            width: int = 1) -> None:
    """Decode every part of one group at once: distinct ones joined by ``joint * width``, transformed, split.

    ``transform`` must turn each ``joint * width`` into one ``joint`` and never act across it.
    """
    column = parts[group::_STRIDE]
    distinct = list(dict.fromkeys(filter(None, column)))
    if not distinct:
        return
    decoded = transform((joint * width).join(distinct)).split(joint)
    if len(decoded) != len(distinct):  # the ValueError zip(strict=True) would raise (3.10+)
        raise ValueError(f"decoding turned {len(distinct)} parts into {len(decoded)}")
    table: dict[str | None, str | None] = dict(zip(distinct, decoded))
    parts[group::_STRIDE] = map(table.get, column, column)
