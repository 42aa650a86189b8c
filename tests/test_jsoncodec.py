import json

from archiver import jsoncodec


def test_same_text_as_the_standard_library() -> None:
    """Natural keys hash this text: it must not depend on which encoder produced it."""
    value = ['a"b\\c\n\t\x01\x7f é 😀 \u2028 /', None, 638500000000000000, {"k": [1, 2.5, True]}]
    assert jsoncodec.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_lone_surrogates_are_accepted_as_json_allows() -> None:
    """orjson refuses "\\ud800"; JSON allows it, so a provider's page with one is not 'malformed'."""
    text = '{"payload": "\\ud800 broken emoji"}'
    assert jsoncodec.loads(text) == json.loads(text)
    assert jsoncodec.loads(jsoncodec.dumps(json.loads(text))) == json.loads(text)


def test_garbage_still_raises_value_error() -> None:
    for bad in ['{"message": "ok", "data": {"lo', "", b"\xff"]:
        try:
            jsoncodec.loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_text_with_lone_surrogates_is_encodable_and_reads_back_the_same() -> None:
    """Stored as the escape it was served as: UTF-8 takes it, and it parses to the same value."""
    value = json.loads('{"a": "x\\ud800y \\ud83d\\ude00 \\u0000", "b": [1, "\\udfff"]}')
    text = jsoncodec.dumps(value)
    text.encode("utf-8")
    assert jsoncodec.loads(text) == value
    assert '"x\\ud800y 😀 \\u0000"' in text


def test_the_bytes_are_the_text_encoded_whatever_it_holds() -> None:
    """``dumpb`` feeds SendZen's natural key hash: a lone surrogate (orjson's fallback)
    must give the same bytes as ``dumps``, or archived keys would change."""
    for value in (["a", 1, None, "é"], ["x\ud800y", {"k": "\udfff"}]):
        assert jsoncodec.dumpb(value) == jsoncodec.dumps(value).encode()
