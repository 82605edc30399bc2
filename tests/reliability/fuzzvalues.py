"""Hypothesis strategies for hostile job definitions, queuedata and server replies.

Each starts from a real document (the test fixtures' jobs, queuedata and a captured
panda-server reply) and replaces some fields with values of the wrong type, huge
strings, NUL bytes, path traversal names or deep nesting, drops fields and adds
unknown ones: what a broken or malicious server, Harvester or CRIC could hand a pilot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.pilotrun import FIXTURES, job_def

JOB_FIXTURES = ("pilot3_test_production_job.json", "pilot3_test_user_job.json")
#: File names a server must never be able to make the pilot write or read.
HOSTILE_NAMES = ("../../../etc/passwd", "/etc/shadow", "..", ".", "a/../../b", "~root/x", "a\x00b", "x" * 300,
                 "-rf", "$(touch pwned)", "a;b|c", "\n", " ", "a,b", "..\\..\\win", "🙂" * 100, "NULL", "None")


def json_bytes(value: Any) -> bytes:
    """JSON as a careless producer writes it (NaN and Infinity included)."""
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def base_jobs() -> list[dict[str, Any]]:
    """Real-looking definitions: the Pilot 3 fixtures and the tests' own runnable job."""
    return [*(_fixture(n) for n in JOB_FIXTURES), dict(job_def(4242, "-c 'echo ok > out.txt'", ("out.txt",)))]


def huge(max_size: int = 300_000) -> st.SearchStrategy[str]:
    """A long string of one repeated piece (cheap to make, expensive to mishandle)."""
    return st.tuples(st.sampled_from(["a", "'", "\\", '"', "x,", "../", "\x00", " ", "é"]),
                     st.integers(1, max_size)).map(lambda t: t[0] * t[1])


def nested(max_depth: int = 900) -> st.SearchStrategy[Any]:
    """A list or dict nested ``depth`` deep (deep enough to exhaust a recursive parser)."""
    def build(depth: int, as_dict: bool) -> Any:
        value: Any = "leaf"
        for _ in range(depth):
            value = {"k": value} if as_dict else [value]
        return value
    return st.tuples(st.integers(1, max_depth), st.booleans()).map(lambda t: build(*t))


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=40), st.sampled_from(HOSTILE_NAMES), st.integers(-2**70, 2**70).map(str))


def hostile() -> st.SearchStrategy[Any]:
    """Any JSON value a field must survive."""
    small = st.recursive(scalars(), lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                         max_leaves=8)
    return st.one_of(scalars(), small, huge(), nested(900))


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]], values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """One of ``bases`` with some fields replaced, some dropped, some unknown ones added."""
    doc = dict(draw(st.sampled_from(bases)))
    keys = sorted(doc)
    for key in draw(st.lists(st.sampled_from(keys), max_size=6, unique=True)):
        doc[key] = draw(values)
    for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
        doc.pop(key, None)
    for key in draw(st.lists(st.text(min_size=1, max_size=12), max_size=2)):
        doc[key] = draw(values)
    return doc


def job_definitions() -> st.SearchStrategy[dict[str, Any]]:
    strategy: st.SearchStrategy[dict[str, Any]] = mutated(base_jobs(), hostile())  # composite's typing needs 3.10
    return strategy


def queuedata_documents() -> st.SearchStrategy[Any]:
    """Queuedata: the test queue mutated (its nested parts too), or a document of the wrong shape."""
    base = _fixture("queuedata_TEST_QUEUE.json")
    shaped = mutated([base], hostile())
    inner = st.builds(lambda q, k, v: {**q, k: v}, st.just(base), st.sampled_from(["acopytools", "astorages",
                                                                                    "copytools", "params"]),
                      st.one_of(st.dictionaries(st.text(max_size=6), hostile(), max_size=3), hostile()))
    return st.one_of(shaped, inner, hostile(), st.builds(lambda q: {"TEST_QUEUE": q}, shaped))


def raw_documents() -> st.SearchStrategy[bytes]:
    """Bytes that are not JSON, or JSON too deep for a recursive parser."""
    deep = st.integers(500, 200_000).map(lambda n: b"[" * n + b"]" * n)
    deep_dict = st.integers(500, 100_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    return st.one_of(st.binary(max_size=200), deep, deep_dict, huge().map(lambda s: s.encode("utf-8", "replace")))


def getjob_replies() -> st.SearchStrategy[bytes]:
    """A getJob answer: a real one with its job mutated, in the legacy or v1 shape, or raw junk."""
    captured = _fixture("panda-server-1.0.4_acquire_jobs_response.json")
    runnable = dict(job_def(4242, "-c 'echo ok > out.txt'", ("out.txt",)))

    def legacy(job: dict[str, Any]) -> bytes:
        return json.dumps({"StatusCode": 0, **job}).encode()

    def v1(job: dict[str, Any]) -> bytes:
        return json.dumps({**captured, "data": {"StatusCode": 0, "jobs": [job]}}).encode()

    jobs = mutated([runnable], hostile())
    envelope = mutated([captured], hostile()).map(lambda d: json.dumps(d).encode())
    return st.one_of(jobs.map(legacy), jobs.map(v1), envelope, raw_documents())


def replies() -> st.SearchStrategy[list[tuple[int, bytes]]]:
    """What the stub server answers, request after request: (HTTP status, body)."""
    status = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 403, 404, 500, 502, 503])
    return st.lists(st.tuples(status, getjob_replies()), min_size=1, max_size=6)


def for_each_example(seed: int, examples: int, strategy: st.SearchStrategy[Any], body: Callable[[Any], None]) -> None:
    """Call ``body`` on ``examples`` values drawn with ``seed`` (the campaign's seed: replayable).

    ``body`` records violations in a ledger instead of raising, so hypothesis does not
    shrink: the campaign wants every violation of the run, each with its example.
    """
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @hypothesis_seed(seed)
    @given(strategy)
    def each(value: Any) -> None:
        body(value)

    each()
