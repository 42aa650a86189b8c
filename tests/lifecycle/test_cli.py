"""The lifecycle commands as an operator runs them: erase, prune, Parquet export."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from archiver.simulator import FakeSendZen, sendzen_log, spread
from archiver.times import utcnow
from tests.cli_helpers import archiver
from tests.helpers import write_config

NOW = utcnow().replace(microsecond=0)


@pytest.fixture
async def config(tmp_path: Path, fake_sendzen: FakeSendZen) -> Path:
    fake_sendzen.add(*(sendzen_log(i, at) for i, at in enumerate(spread(60, NOW - timedelta(days=3), NOW))))
    path = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url)
    assert (await archiver(path, "backfill")).code == 0
    return path


async def test_erase_prints_counts_and_a_dry_run_only_counts(config: Path) -> None:
    """sendzen_log(3) is an incoming text from 15550000003: its record goes, once."""
    dry = await archiver(config, "erase", "--phone", "+1 555 000-0003", "--dry-run")
    assert dry.code == 0 and dry.stdout.startswith("would erase records: ")
    done = await archiver(config, "erase", "--phone", "+1 555 000-0003")
    assert done.code == 0 and done.stdout.replace("erased", "would erase") == dry.stdout
    again = await archiver(config, "erase", "--phone", "15550000003")
    assert "records: 0, events: 0" in again.stdout


@pytest.mark.parametrize("phone", ["", "call me", "+"])
async def test_erase_refuses_what_is_not_a_number(phone: str, config: Path) -> None:
    """A clear one-line refusal, exit 2, nothing erased."""
    done = await archiver(config, "erase", "--phone", phone)
    assert done.code == 2 and done.stderr.startswith("archiver: --phone: ") and "not a phone number" in done.stderr


async def test_prune_without_keep_days_keeps_everything(config: Path) -> None:
    """keep_days = 0 means forever: prune says so and deletes nothing."""
    done = await archiver(config, "prune")
    assert done.code == 0 and "keep forever" in done.stdout


async def test_export_parquet_from_the_command_line(config: Path, tmp_path: Path) -> None:
    """--format parquet --output DIR writes every source's partitions; jsonl still needs --source."""
    out = tmp_path / "parquet"
    assert (await archiver(config, "export", "--format", "parquet", "--output", str(out))).code == 0
    assert ds.dataset(out, format="parquet", partitioning="hive").count_rows() == 60
    refused = await archiver(config, "export")
    assert refused.code == 2 and "--source is required" in refused.stderr
