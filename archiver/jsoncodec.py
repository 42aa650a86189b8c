"""JSON on the hot path: orjson, with the standard library as the fallback for what
orjson refuses but JSON allows (lone surrogate escapes such as ``"\\ud800"``).

Both produce the same compact text (``ensure_ascii=False``, no spaces) for everything
orjson accepts, so natural keys hashed from it are stable whichever path ran.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` only if the standard library refuses it too."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
