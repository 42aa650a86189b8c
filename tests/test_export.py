"""Export mechanics that the CLI tests do not reach."""

from pathlib import Path

import pytest

from archiver.export import atomic_output


def test_output_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("older complete export\n")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as out:
            out.write('{"half": ')
            raise RuntimeError("database went away")
    assert target.read_text() == "older complete export\n", "a failed export clobbers nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"], "no partial file left"
    with atomic_output(str(target)) as out:
        out.write("new\n")
    assert target.read_text() == "new\n"
