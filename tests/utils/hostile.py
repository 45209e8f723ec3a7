"""Hostile request bodies for the public webhooks (issue 17 §6), as hypothesis strategies:
wrong content types, invalid UTF-8, control characters, huge and deeply nested JSON, emoji
floods, unknown and malformed payloads ``/intent{...}``. Used by tests/test_fuzz_webhooks.py
(a short run) and benchmarks/fuzz_webhooks.py (a long one)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

CONTENT_TYPES = ["application/json", "application/json; charset=latin-1", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz",
                 "application/octet-stream", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=20,
)

hostile_texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=100),
    st.integers(1, 3000).map(lambda n: "\U0001F600" * n),  # emoji floods
    st.integers(1, 5000).map(lambda n: "x" * n),
    st.sampled_from(["/", "//", "/greet", '/greet{"name": "x"}', '/find_services{"need": {"a": 1}}',
                     "/inform_location{", '/inform_location{"latitude": "north"}',
                     "/unknown_intent", '/request_human{"x":' + "[" * 50 + "]" * 50 + "}",
                     "/restart", "/session_start", "/action_listen", "\x00", "\ud800"]),
)


@st.composite
def deep_json(draw) -> bytes:
    depth = draw(st.integers(10, 100_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + "1" + closer * depth
    return ('{"sender": "deep", "message": "hi", "metadata": ' + inner + "}").encode()


def shaped(fields: dict) -> st.SearchStrategy[bytes]:
    """JSON objects with the endpoint's own fields holding hostile values."""
    return st.fixed_dictionaries(
        {}, optional={key: st.one_of(hostile_texts, json_values) for key in fields}
    ).map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def bodies(fields: dict) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2000),  # invalid UTF-8 and anything else
        json_values.map(lambda v: json.dumps(v).encode()),
        deep_json(),
        shaped(fields),
        shaped(fields),
    )
