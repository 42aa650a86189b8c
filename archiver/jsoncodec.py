"""JSON on the hot path: orjson, with the standard library as the fallback for what
orjson refuses but JSON allows (lone surrogate escapes such as ``"\\ud800"``).

Both produce the same compact text (``ensure_ascii=False``, no spaces) for everything
orjson accepts, so natural keys hashed from it are stable whichever path ran.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # only inside strings, in JSON text


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` only if the standard library refuses it too,
    or for what no type holds (nesting deeper than the parser allows, numbers beyond
    a double): pathological input is an error, never another exception or ``inf``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data, parse_float=_finite, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested deeper than the parser allows") from None


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is beyond what a double holds")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def dumps(value: Any) -> str:
    """Compact JSON text, always UTF-8-encodable: a lone surrogate (which orjson refuses)
    stays the escape it was served as, so the text parses back to the same value."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return _escaped(value)


def dumpb(value: Any) -> bytes:
    """``dumps`` as UTF-8 bytes, without decoding orjson's bytes and encoding them again."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _escaped(value).encode()


def _escaped(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
