"""Opening what a command needs: the archive, its writer, the sources."""

from __future__ import annotations

from pathlib import Path

from archiver import config as config_mod
from archiver.runtime import opened
from tests.helpers import write_config


async def test_a_command_that_saves_starts_sqlite_s_writer_as_it_opens_and_one_that_reads_does_not(
        tmp_path: Path) -> None:
    """``backfill`` and ``run`` open with ``writes``: the writer process is running before
    the first save (its start overlaps theirs); ``status`` opens without one."""
    config = config_mod.load(write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'archive.db'}",
                                          sendzen="http://127.0.0.1:9"))
    async with opened(config, writes=True) as rt:
        child = rt.store._writer.process._process  # type: ignore[union-attr]
        assert child is not None and child.poll() is None
    assert child.poll() is not None, "and it ends with the command"
    async with opened(config) as rt:
        assert rt.store._writer.process._process is None  # type: ignore[union-attr]
