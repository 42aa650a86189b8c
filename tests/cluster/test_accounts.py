"""Several accounts per provider: each account's rows under its name, status per account."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

from archiver.simulator import FakeInfobip, FakeSendZen, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.cli_helpers import archiver, cli_env

NOW = utcnow()


def accounts_config(path: Path, db_url: str, sz: FakeSendZen, ib: FakeInfobip) -> Path:
    path.write_text(f"""
[database]
url = "{db_url}"

[sendzen]
base_url = "{sz.base_url}"
poll_interval_seconds = 1

[[sendzen.accounts]]
name = "shop-eu"
api_key_env = "SZ_KEY_EU"

[[sendzen.accounts]]
name = "shop-us"
api_key = "sz-key-us"

[infobip]
base_url = "{ib.base_url}"
requests_per_minute = 120

[[infobip.accounts]]
name = "main"
api_key = "ib-key-main"

[[infobip.accounts]]
name = "promo"
api_key_env = "IB_KEY_PROMO"
""")
    return path


async def test_each_account_archives_under_its_own_name(tmp_path: Path, db_url: str) -> None:
    """Two SendZen and two Infobip accounts on one fake each, told apart by their keys."""
    sz = await FakeSendZen(api_key="sz-key-eu", other_keys=("sz-key-us",)).start()
    ib = await FakeInfobip(api_key="ib-key-main", other_keys=("ib-key-promo",), rate_limit=10_000).start()
    try:
        sz.add(*(sendzen_log(i, at) for i, at in enumerate(spread(30, NOW - timedelta(days=2), NOW))))
        ib.add(*(infobip_message(i, at, final=True) for i, at in enumerate(spread(20, NOW - timedelta(hours=20), NOW))))
        config = accounts_config(tmp_path / "c.toml", db_url, sz, ib)
        env = cli_env(SZ_KEY_EU="sz-key-eu", IB_KEY_PROMO="ib-key-promo")
        done = await archiver(config, "backfill", env=env)
        assert done.code == 0, done.stderr
        assert {r["__key"] for r in sz.requests} == {"sz-key-eu", "sz-key-us"}
        assert {r["__key"] for r in ib.requests} == {"ib-key-main", "ib-key-promo"}
        status = json.loads((await archiver(config, "status", "--json", env=env)).stdout)
        assert {n: a["rows"] for n, a in status["sendzen"]["accounts"].items()} == {"shop-eu": 30, "shop-us": 30}
        assert {n: a["rows"] for n, a in status["infobip"]["accounts"].items()} == {"main": 20, "promo": 20}
        assert status["sendzen"]["rows"] == 60 and status["sendzen"]["checkpoint"] is not None
        one = await archiver(config, "export", "--source", "infobip", "--account", "promo", env=env)
        assert len(one.stdout.splitlines()) == 20 and all('"account":"promo"' in l for l in one.stdout.splitlines())
    finally:
        await sz.stop()
        await ib.stop()


async def test_backfill_of_one_account(tmp_path: Path, db_url: str) -> None:
    """--source with --account polls that account only."""
    sz = await FakeSendZen(api_key="sz-key-eu", other_keys=("sz-key-us",)).start()
    ib = await FakeInfobip(api_key="ib-key-main", other_keys=("ib-key-promo",)).start()
    try:
        sz.add(*(sendzen_log(i, at) for i, at in enumerate(spread(10, NOW - timedelta(days=1), NOW))))
        config = accounts_config(tmp_path / "c.toml", db_url, sz, ib)
        env = cli_env(SZ_KEY_EU="sz-key-eu", IB_KEY_PROMO="ib-key-promo")
        done = await archiver(config, "backfill", "--source", "sendzen", "--account", "shop-us", env=env)
        assert done.code == 0, done.stderr
        assert {r["__key"] for r in sz.requests} == {"sz-key-us"} and ib.requests == []
        missing = await archiver(config, "backfill", "--source", "sendzen", "--account", "nope", env=env)
        assert missing.code == 1 and "no account 'nope'" in missing.stderr
    finally:
        await sz.stop()
        await ib.stop()


async def test_an_unset_key_variable_names_the_account_and_the_variable(tmp_path: Path, db_url: str) -> None:
    """SZ_KEY_EU unset: the start stops with one line naming both."""
    sz, ib = FakeSendZen(), FakeInfobip()
    config = accounts_config(tmp_path / "c.toml", db_url, sz, ib)
    done = await archiver(config, "status", env=cli_env(IB_KEY_PROMO="x"))
    assert done.code == 2 and "account 'shop-eu': api_key_env SZ_KEY_EU is not set" in done.stderr


async def test_each_infobip_account_has_its_own_rate_limit(tmp_path: Path, db_url: str) -> None:
    """Infobip limits requests per account: two accounts at 4/min make 8+ requests within
    seconds (a shared limit would hold the fifth back for a minute), and no account ever
    goes over its own (the fake counts per key: 0 × 429)."""
    rpm = 4
    ib = await FakeInfobip(api_key="ib-key-main", other_keys=("ib-key-promo",), rate_limit=rpm).start()
    try:
        ib.add(*(infobip_message(i, at, final=True) for i, at in enumerate(spread(20, NOW - timedelta(hours=40), NOW))))
        config = tmp_path / "c.toml"
        config.write_text(f'[database]\nurl = "{db_url}"\n\n[infobip]\nbase_url = "{ib.base_url}"\n'
                          f'requests_per_minute = {rpm}\nwindow_seconds = 86400\n'
                          '\n[[infobip.accounts]]\nname = "main"\napi_key = "ib-key-main"\n'
                          '\n[[infobip.accounts]]\nname = "promo"\napi_key = "ib-key-promo"\n')
        started = asyncio.get_running_loop().time()
        done = await archiver(config, "backfill")
        took = asyncio.get_running_loop().time() - started
        assert done.code == 0, done.stderr
        per_key = Counter(r["__key"] for r in ib.requests)
        assert set(per_key) == {"ib-key-main", "ib-key-promo"} and all(n <= rpm for n in per_key.values())
        assert sum(per_key.values()) > rpm and took < 50, "the accounts did not wait for each other's budget"
        assert ib.served.get(429, 0) == 0
        status = json.loads((await archiver(config, "status", "--json")).stdout)
        assert {n: a["rows"] for n, a in status["infobip"]["accounts"].items()} == {"main": 20, "promo": 20}
    finally:
        await ib.stop()


async def test_a_removed_account_keeps_its_rows_and_is_no_longer_polled(tmp_path: Path, db_url: str) -> None:
    sz = await FakeSendZen(api_key="sz-key-eu", other_keys=("sz-key-us",)).start()
    try:
        sz.add(*(sendzen_log(i, at) for i, at in enumerate(spread(10, NOW - timedelta(days=1), NOW))))
        both = (f'[database]\nurl = "{db_url}"\n\n[sendzen]\nbase_url = "{sz.base_url}"\n'
                '\n[[sendzen.accounts]]\nname = "shop-eu"\napi_key = "sz-key-eu"\n')
        config = tmp_path / "c.toml"
        config.write_text(both + '\n[[sendzen.accounts]]\nname = "shop-us"\napi_key = "sz-key-us"\n')
        assert (await archiver(config, "backfill")).code == 0
        config.write_text(both)
        sz.requests.clear()
        done = await archiver(config, "backfill")
        assert done.code == 0 and {r["__key"] for r in sz.requests} == {"sz-key-eu"}
        status = json.loads((await archiver(config, "status", "--json")).stdout)
        assert list(status["sendzen"]["accounts"]) == ["shop-eu"]
        kept = await archiver(config, "export", "--source", "sendzen", "--account", "shop-us")
        assert kept.code == 0 and len(kept.stdout.splitlines()) == 10, "its archived rows stay"
    finally:
        await sz.stop()


async def test_two_accounts_on_one_key_warn_once_at_start(tmp_path: Path, db_url: str) -> None:
    sz = FakeSendZen()
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n\n[sendzen]\nbase_url = "{sz.base_url}"\napi_key = "same-key"\n'
                      '\n[[sendzen.accounts]]\nname = "a"\n\n[[sendzen.accounts]]\nname = "b"\n')
    done = await archiver(config, "status")
    assert done.code == 0 and done.stderr.count("use the same api_key") == 1 and "same-key" not in done.stderr
