"""JSON a request may carry: no lone surrogates, no absurd nesting, no absurd numbers.

Python's ``json`` module accepts things the rest of the server cannot hold: ``"\\ud800"``
decodes to a string that UTF-8 (the database, the response) refuses to encode; a
5,000-digit integer trips ``int``'s digit limit deep inside some later call; a value nested
a few thousand deep raises ``RecursionError`` wherever it is next walked. Each of those was
a 500 somewhere far from the request. :func:`check_json` finds them at the edge and names
them in one 422 (``invalid_request``) instead.

Design record: a pre-scan of the raw bytes for ``\\ud8xx`` escapes was considered and
rejected: it needs a second JSON tokenizer to tell escapes in strings from text. Parsing
once with hooks on numbers and then walking the value iteratively (never recursively) costs
one pass more than parsing alone and is exact.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pulseloop.errors import InvalidRequest

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a request may use (event bodies, traces)."""
MAX_NUMBER_CHARS = 64
"""Longest number literal: a float64 needs 24 characters; 64 leaves room and no more."""


class _Hazard(ValueError):
    """A value the parser accepted that the server must not (raised inside the hooks)."""


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Hazard(f"a number of {len(text):,} characters (at most {MAX_NUMBER_CHARS})")
    return text


def _parse_int(text: str) -> int:
    return int(_number(text))


def _parse_float(text: str) -> float:
    value = float(_number(text))
    if not math.isfinite(value):
        raise _Hazard(f"{text} (out of range for a float)")
    return value


def _parse_constant(name: str) -> float:
    raise _Hazard(f"{name} is not JSON; send a finite number or null")


def loads(body: bytes | str, field: str = "body") -> Any:
    """``body`` parsed as JSON, refusing hazards with InvalidRequest naming ``field``.

    Raises plain ``ValueError`` (not InvalidRequest) for text that is not JSON at all, so
    callers keep their own message for that case.
    """
    try:
        value = json.loads(
            body, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except _Hazard as exc:
        raise _refuse(field, str(exc)) from None
    except RecursionError:
        raise _refuse(field, f"nesting deeper than {MAX_DEPTH}") from None
    check_value(value, field)
    return value


def check_value(value: Any, field: str = "body") -> None:
    """Refuse a parsed value nested deeper than :data:`MAX_DEPTH` or holding a string
    (or key) that is not valid Unicode (a lone surrogate)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, field)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _refuse(field, f"nesting deeper than {MAX_DEPTH}")
            if isinstance(item, dict):
                for key, inner in item.items():
                    _check_text(key, field)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)


def check_text(text: str, field: str) -> None:
    """Refuse a string that cannot be encoded as UTF-8 (it holds a lone surrogate)."""
    _check_text(text, field)


def _check_text(text: str, field: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(field, "a string with a lone surrogate (invalid Unicode)") from None


def _refuse(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} holds {problem}; send valid JSON with plain numbers and text", field
    )
