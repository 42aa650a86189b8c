"""The one typed configuration object, loaded from TOML plus environment overrides.

Validation happens once, at start, and every message names the offending key
(``[sendzen] poll_interval_seconds``) so an operator can fix the file without reading
code. Secrets are excluded from every ``repr`` so they cannot leak through logs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from archiver.errors import ConfigError

DEFAULT_CONFIG_PATH = "config.toml"


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable url>"


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///archive.db"

    def __repr__(self) -> str:
        return f"DatabaseConfig(url={redact_url(self.url)!r})"


@dataclass(frozen=True)
class ProviderConfig:
    """The keys every provider section has. A section's keys are the defaults of its
    ``[[<provider>.accounts]]``; any of them may be set per account."""

    provider: ClassVar[str] = ""
    api_key: str = field(default="", repr=False)
    api_key_env: str | None = None
    """Read the key from this environment variable instead of the file."""
    base_url: str = ""
    account: str = "default"
    """The name the rows are stored under (an account's ``name``)."""
    poll_interval_seconds: int = 60
    overlap_seconds: int = 300
    requests_per_minute: int = 120
    window_seconds: int = 3600
    timeout_seconds: float = 30.0
    max_response_bytes: int = 32 * 1024 * 1024
    """Answers are abandoned past this many bytes (after decompression): memory stays bounded."""
    max_page_size: ClassVar[int] = 1000
    page_size: int = 1000

    def problem(self) -> str | None:
        """What this provider's own keys get wrong (the shared checks are ``check_account``'s)."""
        return None


PROVIDERS: dict[str, type[ProviderConfig]] = {}
"""Each provider's config class, by section name; its module registers it (``provider_section``)."""


def provider_section(cls: type[ProviderConfig]) -> type[ProviderConfig]:
    """Class decorator: the provider's section (and its ``[[<provider>.accounts]]``) is read from the file."""
    PROVIDERS[cls.provider] = cls
    return cls


def known_providers() -> dict[str, type[ProviderConfig]]:
    """Every provider's config class, in the registry's order (importing it registers them)."""
    from archiver.sources.registry import PROVIDERS as SOURCES

    return {name: PROVIDERS[name] for name in SOURCES}


ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class ClusterConfig:
    lease_seconds: int = 30
    """How long an account stays with a process that stopped answering (PostgreSQL scale-out)."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class ArchiveConfig:
    keep_days: int = 0
    """Records older than this many days are pruned and never archived; 0 keeps forever."""


@dataclass(frozen=True)
class ApiToken:
    name: str = ""
    token: str = field(default="", repr=False)
    token_env: str | None = None
    accounts: tuple[str, ...] = ()
    """``"sendzen/shop-eu"``…; empty: every account."""
    permissions: tuple[str, ...] = ("read",)


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: tuple[ApiToken, ...] = ()


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    api: ApiConfig | None = None
    archive: ArchiveConfig = ArchiveConfig()
    cluster: ClusterConfig = ClusterConfig()
    sections: Mapping[str, ProviderConfig] = field(default_factory=dict, metadata={"resolved": True})
    """The provider sections present in the file (``[sendzen]``, ``[infobip]``), by name."""
    accounts: tuple[ProviderConfig, ...] = field(default=(), metadata={"resolved": True})
    """Not a key of the file: every account of every provider, resolved: section defaults, overrides, keys."""

    def accounts_of(self, provider: str) -> list[ProviderConfig]:
        return [a for a in self.accounts if a.provider == provider]

    def warnings(self) -> list[str]:
        """What is allowed but probably a mistake: accounts of one provider sharing a key
        read the same logs (each archives them under its own name) on one rate limit."""
        by_key: dict[tuple[str, str], list[str]] = {}
        for a in self.accounts:
            by_key.setdefault((a.provider, a.api_key), []).append(a.account)
        return [f"[[{provider}.accounts]] {', '.join(map(repr, names))} use the same api_key: each archives "
                "the same logs under its own name, and the provider counts their requests together"
                for (provider, _), names in by_key.items() if len(names) > 1]

    def secrets(self) -> list[str]:
        """Every secret value, so output can be checked (and scrubbed) for them."""
        found = [a.api_key for a in self.accounts if a.api_key]
        found += [t.token for t in (self.api.tokens if self.api else ()) if t.token]
        password = make_url(self.database.url).password if "://" in self.database.url else None
        return found + ([str(password)] if password else [])


def config_path(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    return Path(explicit or env.get("ARCHIVER_CONFIG") or DEFAULT_CONFIG_PATH)


def load(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read, override from ``env``, and validate; raises ``ConfigError``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path} (pass --config PATH or set ARCHIVER_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return from_dict(data, env)


def from_dict(data: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> Config:
    data = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    if "accounts" in data:
        raise ConfigError("unknown key accounts (accounts belong in [[sendzen.accounts]] or [[infobip.accounts]])")
    providers = known_providers()
    tables = {name: data[name].pop("accounts", None) for name in providers if isinstance(data.get(name), dict)}
    _apply_env(data, env, tables)
    defaults = {name: data.pop(name) for name in providers if name in data}
    sections = {name: _build(providers[name], table, name) for name, table in defaults.items()}
    config = dataclasses.replace(_build(Config, data, ""), sections=sections)
    config = dataclasses.replace(config, accounts=resolve_accounts(config, defaults, tables, env))
    if config.api is not None:
        config = dataclasses.replace(config, api=resolve_tokens(config.api, env))
    _check(config)
    return config


def _apply_env(data: dict[str, Any], env: Mapping[str, str], tables: Mapping[str, Any]) -> None:
    """Environment secrets win over the file; they never enable a disabled source.
    ``<PROVIDER>_API_KEY`` is the key of the account named ``default``."""
    if env.get("ARCHIVER_DATABASE_URL"):
        data.setdefault("database", {})["url"] = env["ARCHIVER_DATABASE_URL"]
    for section in known_providers():
        var = f"{section.upper()}_API_KEY"
        if not env.get(var) or not isinstance(data.get(section), dict):
            continue
        accounts = tables.get(section)
        if not accounts:
            data[section]["api_key"] = env[var]
        for table in accounts or ():
            if isinstance(table, dict) and table.get("name") == "default":
                table["api_key"] = env[var]


def resolve_accounts(config: Config, data: Mapping[str, Any], tables: Mapping[str, Any],
                     env: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    """Each provider's accounts: the section alone is one account (part 1); with
    ``[[<provider>.accounts]]``, each table over the section's keys as defaults."""
    found: list[ProviderConfig] = []
    for name, cls in known_providers().items():
        section = config.sections.get(name)
        if section is None:
            continue
        accounts = tables.get(name) or [None]
        if not isinstance(accounts, list):
            raise ConfigError(f"[{name}] accounts must be an array of tables ([[{name}.accounts]])")
        for table in accounts:
            found.append(_with_key(section if table is None else _account(cls, name, data[name], table), env))
    return tuple(found)


def _account(cls: type[ProviderConfig], provider: str, defaults: Mapping[str, Any], table: Any) -> ProviderConfig:
    if not isinstance(table, dict) or not isinstance(table.get("name"), str):
        raise ConfigError(f"[[{provider}.accounts]] every account needs a name")
    name = table["name"]
    if not ACCOUNT_NAME.match(name):
        raise ConfigError(f"[[{provider}.accounts]] name {name!r} must match [a-z0-9][a-z0-9_-]{{0,39}}")
    merged = {**defaults, **{k: v for k, v in table.items() if k != "name"}, "account": name}
    return _build(cls, merged, f"[[{provider}.accounts]] {name!r}")


def _with_key(account: ProviderConfig, env: Mapping[str, str]) -> ProviderConfig:
    """The key from ``api_key_env`` when set; an unset or empty variable stops the start."""
    if not account.api_key_env:
        return account
    value = env.get(account.api_key_env, "")
    if not value:
        raise ConfigError(f"{_label(account)}: api_key_env {account.api_key_env} is not set")
    return dataclasses.replace(account, api_key=value)


def _label(account: ProviderConfig) -> str:
    return f"[{account.provider}]" + ("" if account.account == "default" else f" account {account.account!r}")


def _build(cls: type, table: Any, where: str) -> Any:
    label = (where if where.startswith("[[") else f"[{where}]") if where else "the top level"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{label} must be a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(f"unknown key {_key(where, key)} (known: {', '.join(sorted(names))})")
    values = {key: _coerce(hints[key], value, where, key) for key, value in table.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args and dataclasses.is_dataclass(args[0]):
        if not isinstance(value, list):
            raise ConfigError(f"{_key(where, key)} must be an array of tables ([[{where + '.' if where else ''}{key}]])")
        return tuple(_build(args[0], item, f"{where}.{key}" if where else key) for item in value)
    if dataclasses.is_dataclass(hint) or (args and dataclasses.is_dataclass(args[0])):
        return _build(hint if dataclasses.is_dataclass(hint) else args[0], value, key)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{_key(where, key)} must be a list of strings, got {value!r}")
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        shown = "<hidden>" if key == "api_key" else repr(value)
        raise ConfigError(f"{_key(where, key)} must be {_TYPE_NAMES[hint]}, got {shown}")
    return value


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _key(where: str, key: str) -> str:
    if where.startswith("[["):
        return f"{where} {key}"
    return f"[{where}] {key}" if where else key


def resolve_tokens(api: ApiConfig, env: Mapping[str, str]) -> ApiConfig:
    """Read each ``token_env``; an unset or empty variable stops the start, naming both."""
    resolved = []
    for token in api.tokens:
        if token.token_env:
            value = env.get(token.token_env, "")
            if not value:
                raise ConfigError(f"[[api.tokens]] {token.name!r}: token_env {token.token_env} is not set")
            token = dataclasses.replace(token, token=value)
        resolved.append(token)
    return dataclasses.replace(api, tokens=tuple(resolved))


def check_api(api: ApiConfig, provider_keys: list[str]) -> None:
    if not 0 < api.port < 65536:
        raise ConfigError("[api] port must be between 1 and 65535")
    names = [t.name for t in api.tokens]
    for token in api.tokens:
        where = f"[[api.tokens]] {token.name!r}"
        if not token.name or names.count(token.name) > 1:
            raise ConfigError(f"[[api.tokens]] name must be set and unique, got {token.name!r}")
        if len(token.token) < 24:
            raise ConfigError(f"{where}: the token must be at least 24 characters (set token or token_env)")
        if token.token in provider_keys:
            raise ConfigError(f"{where}: a read token must not be a provider's API key")
        bad = [a for a in token.accounts if a.partition("/")[0] not in known_providers() or not a.partition("/")[2]]
        if bad:
            raise ConfigError(f"{where}: accounts entry {bad[0]!r} is not \"sendzen/NAME\" or \"infobip/NAME\"")
        unknown = set(token.permissions) - {"read", "erase"}
        if unknown:
            raise ConfigError(f"{where}: unknown permission {sorted(unknown)[0]!r} (known: read, erase)")


def _check(config: Config) -> None:
    """Value checks that the types alone cannot express."""
    url = config.database.url
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:")):
        raise ConfigError(f"[database] url must be sqlite:///… or postgresql://…, got {redact_url(url)}")
    if url.startswith("sqlite:") and url.split("?")[0] in ("sqlite:", "sqlite://", "sqlite:///", "sqlite:///:memory:"):
        raise ConfigError("[database] url names no SQLite file (an in-memory archive is lost on exit): "
                          "use sqlite:///path/to/archive.db")
    names: set[tuple[str, str]] = set()
    for account in config.accounts:
        key = (account.provider, account.account)
        if key in names:
            raise ConfigError(f"[[{account.provider}.accounts]] name {account.account!r} is used twice")
        names.add(key)
        check_account(account)
    if not 0 < config.server.port < 65536:
        raise ConfigError("[server] port must be between 1 and 65535")
    if not 0 <= config.archive.keep_days <= 36_500:
        raise ConfigError(f"[archive] keep_days must be between 0 (keep forever) and 36500, got {config.archive.keep_days}")
    if config.api is not None:
        check_api(config.api, provider_keys=[a.api_key for a in config.accounts])


def check_account(src: ProviderConfig) -> None:
    where = _label(src)
    if not src.api_key:
        var = src.api_key_env or f"{src.provider.upper()}_API_KEY"
        raise ConfigError(f"{where} api_key is missing (set it in the file or in ${var})")
    if not src.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where} base_url must start with http:// or https://, got {src.base_url!r}")
    for key in ("poll_interval_seconds", "requests_per_minute", "window_seconds", "max_concurrency", "page_size",
                "max_response_bytes"):
        if getattr(src, key, 1) < 1:
            raise ConfigError(f"{where} {key} must be at least 1")
    if src.overlap_seconds < 0:
        raise ConfigError(f"{where} overlap_seconds must not be negative")
    if src.page_size > src.max_page_size:
        raise ConfigError(f"{where} page_size must be at most {src.max_page_size} (the provider's maximum)")
    if problem := src.problem():
        raise ConfigError(f"{where} {problem}")
