"""Settings: one dataclass, one documented field per ``GATEWAY_*`` environment variable.

Precedence, lowest first: the defaults below, an optional YAML config file (same field names,
lower case), the environment, then command-line flags. Nothing else in the package reads
``os.environ`` for its own settings; backend credentials are resolved by ``providers.credentials``.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.yaml_file import read_yaml

ENV_PREFIX = "GATEWAY_"
RESERVED_PREFIX = ENV_PREFIX + "TEST_"
"""Never a setting: left to test suites (their database URLs, fake backend keys), never refused."""
_DATABASE_URL_FORMS = "postgresql+asyncpg://user:pass@host/db or sqlite+aiosqlite:///path"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_POSITIVE = (
    "port",
    "workers",
    "key_cache_size",
    "max_body_bytes",
    "max_upload_bytes",
    "quota_refresh_seconds",
    "change_check_seconds",
    "max_concurrent_uploads",
    "upload_idle_timeout_seconds",
    "upstream_connect_timeout_seconds",
    "upstream_timeout_seconds",
    "upstream_max_connections",
    "usage_batch_size",
    "usage_flush_interval_ms",
    "usage_queue_size",
    "shutdown_timeout_seconds",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every field maps to the environment variable ``GATEWAY_<FIELD NAME IN UPPER CASE>``."""

    host: str = "127.0.0.1"
    """Address ``gateway serve`` binds to."""
    port: int = 8080
    """Port ``gateway serve`` listens on."""
    workers: int = 1
    """Worker processes for ``gateway serve``; each has its own caches and usage writer."""
    data_dir: str = "gateway-data"
    """Where embedded mode keeps its SQLite database (created if missing)."""
    database_url: str = ""
    """SQLAlchemy async URL. Empty means embedded SQLite in ``data_dir``;
    production uses ``postgresql+asyncpg://user:pass@host/db``."""
    redis_url: str = ""
    """Redis URL (``redis://host:6379/0``). Empty means in-process state (embedded mode)."""
    models_file: str = "policies/models.yaml"
    """YAML file declaring backends and models; synced into the SQL registry at start."""
    quotas_file: str = "policies/quotas.yaml"
    """YAML file of quota and budget limits; a missing file means no limits."""
    quota_refresh_seconds: float = 10.0
    """How often a replica rebuilds its runtime snapshot from SQL even when nothing changed (it
    seeds new budgets from the ledger); changes themselves arrive within a second (below)."""
    change_check_seconds: float = 1.0
    """How often a replica reads the control plane's generation from SQL (one row) and rebuilds
    its snapshot when it moved: the safety net under Redis change notices, and how changes made
    with the CLI reach a running embedded-mode gateway."""
    admin_key: str = dataclasses.field(default="", repr=False)
    """Bearer token of the bootstrap superuser for ``/admin/*``. Users with a role use admin
    tokens of their own (``gateway users token``); with neither, the admin API refuses everyone."""
    encryption_keys: str = dataclasses.field(default="", repr=False)
    """Fernet keys (comma-separated; the first encrypts, all decrypt) for backend secrets stored
    through the admin API or CLI. ``gateway credentials new-key`` prints one. Never logged."""
    unpriced_models: str = "record"
    """A model version without prices: ``record`` serves it and flags its usage records
    ``unpriced`` (cost unknown, not zero); ``refuse`` answers its requests with 400."""
    auto_migrate: bool | None = None
    """Apply migrations at start. Unset means: yes in embedded mode, no in production
    (run ``gateway migrate`` from the deploy pipeline instead)."""
    key_cache_ttl_seconds: float = 10.0
    """How long a looked-up API key is trusted without asking SQL again. A change to a key
    (revoked, rotated, updated) reaches every replica's cache through the change feed within a
    second; this bounds only a change made behind the gateway's back (straight in SQL)."""
    key_cache_size: int = 100_000
    """How many API keys (valid and unknown) the in-process cache holds."""
    max_body_bytes: int = 10 * 1024 * 1024
    """Largest request body accepted; larger ones get 413."""
    max_upload_bytes: int = 25 * 1024 * 1024
    """Largest audio upload (``/v1/audio/transcriptions`` and ``translations``, streamed through to
    the backend, never held whole); larger ones get 413."""
    max_concurrent_uploads: int = 64
    """Audio uploads in progress at once per process (each holds a backend connection while the
    client sends it); beyond this they get 503 with ``Retry-After``."""
    upload_idle_timeout_seconds: float = 30.0
    """An upload whose client sends nothing for this long is cut off with 408."""
    upstream_transport: str = "aiohttp"
    """Transport behind the one upstream connection pool: ``aiohttp`` (about 4x the throughput
    under concurrency, measured by tests/bench) or ``httpx`` (httpx's own pool)."""
    upstream_connect_timeout_seconds: float = 10.0
    """Time to connect to a backend before answering 504 (a refused connection answers 502)."""
    upstream_timeout_seconds: float = 600.0
    """Time to wait for a backend's response (or the next streamed chunk) before answering 504."""
    upstream_max_connections: int = 1000
    """Connections the shared upstream client keeps open across all backends."""
    usage_batch_size: int = 500
    """Usage records written per SQL batch."""
    usage_flush_interval_ms: int = 200
    """Longest a usage record waits in memory before its batch is written."""
    usage_queue_size: int = 100_000
    """Usage records held in memory while SQL is slow; beyond this they spill to ``data_dir``."""
    shutdown_timeout_seconds: float = 30.0
    """On shutdown, how long open requests (long streams) may run on before they are cut and the
    usage still in memory is flushed; keep it below the orchestrator's grace period."""
    log_level: str = "WARNING"
    """Python log level. Requests are never logged at INFO or above on success."""

    def __post_init__(self) -> None:
        choices = {
            "upstream_transport": ("aiohttp", "httpx"),
            "log_level": _LOG_LEVELS,
            "unpriced_models": ("record", "refuse"),
        }
        for name, allowed in choices.items():
            if str(getattr(self, name)).upper() not in {a.upper() for a in allowed}:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected one of {', '.join(allowed)}")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: must be greater than 0")
        problem = _database_url_problem(self.database_url.strip())
        if problem:
            raise ConfigError(f"{ENV_PREFIX}DATABASE_URL: {masked_url(self.database_url.strip())!r} {problem}")

    @property
    def database_setting(self) -> str:
        """The variable to blame when the database is unusable: the URL, or the data dir it defaults into."""
        return ENV_PREFIX + ("DATABASE_URL" if self.database_url.strip() else "DATA_DIR")

    @property
    def embedded(self) -> bool:
        return not self.database_url.strip() or self.database_url.startswith("sqlite")

    @property
    def effective_database_url(self) -> str:
        if self.database_url.strip():
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'gateway.db'}"

    @property
    def should_migrate(self) -> bool:
        return self.embedded if self.auto_migrate is None else self.auto_migrate

    @classmethod
    def load(
        cls,
        config_file: str | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Build settings from a config file, the environment and explicit overrides.

        Each source is checked on its own, so an error names where the bad value came from.
        """
        env = os.environ if environ is None else environ
        _refuse_unknown_variables(env)
        path = config_file or env.get(ENV_PREFIX + "CONFIG")
        values: dict[str, Any] = {}
        if path:
            values |= _checked(_read_config_file(Path(path)), str(path))
        values |= _checked(
            {name: env[ENV_PREFIX + name.upper()] for name in _FIELDS if ENV_PREFIX + name.upper() in env},
            "environment",
            env_names=True,
        )
        values |= _checked({k: v for k, v in (overrides or {}).items() if v is not None}, "override")
        return cls(**values)


def field_docs() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting; used by ``gateway settings``."""
    import ast
    import inspect

    source = inspect.getsource(Settings)
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, following in itertools.pairwise(body):
        documented = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and documented:
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return [(ENV_PREFIX + f.name.upper(), repr(f.default), docs.get(f.name, "")) for f in dataclasses.fields(Settings)]


def _read_config_file(path: Path) -> dict[str, Any]:
    data = read_yaml(path, "config file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of setting names to values")
    return {str(k): v for k, v in data.items()}


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (over-masking rather than leaking a stray '@')."""
    return re.sub(r"^([^:/]+://[^:/@]*):.*@", r"\1:***@", url)


def _database_url_problem(url: str) -> str | None:
    """What is wrong with the form of a database URL ('' is embedded mode), None if nothing."""
    if not url:
        return None
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme is None:
        return f"is not a URL: expected {_DATABASE_URL_FORMS}"
    dialect, _, driver = scheme.group(1).lower().partition("+")
    if dialect in {"postgres", "postgresql"} and driver != "asyncpg":
        return "has the wrong scheme: use postgresql+asyncpg://user:pass@host/db (asyncpg is the driver)"
    if dialect == "sqlite" and driver != "aiosqlite":
        return "has the wrong scheme: use sqlite+aiosqlite:///path (aiosqlite is the driver)"
    if dialect not in {"postgresql", "sqlite"}:
        return f"is an unsupported database ({dialect}): expected {_DATABASE_URL_FORMS}"
    # SQLAlchemy's own parser, so a URL that passes here parses in the engine too; imported only
    # when a URL is set.
    from sqlalchemy.engine import make_url

    try:
        make_url(url)
    except ValueError as exc:  # ArgumentError is a ValueError too
        return "cannot be parsed" + (" (its port is not a number)" if "int()" in str(exc) else "")
    return None


def _refuse_unknown_variables(env: Mapping[str, str]) -> None:
    """A misspelt ``GATEWAY_*`` variable would otherwise be silently ignored, leaving the default."""
    known = [ENV_PREFIX + "CONFIG", *(ENV_PREFIX + name.upper() for name in _FIELDS)]
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and not name.startswith(RESERVED_PREFIX) and name not in known:
            raise ConfigError(
                f"{name}: unknown setting ({_closest(name, known)}); "
                f"every {ENV_PREFIX}* variable must be a setting ({RESERVED_PREFIX}* excepted)"
            )


def _closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else "`gateway settings` lists them"


def _checked(raw: Mapping[str, Any], source: str, *, env_names: bool = False) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        names = list(_FIELDS)
        raise ConfigError(f"{source}: " + ", ".join(f"unknown setting {n} ({_closest(n, names)})" for n in unknown))
    return {
        name: _coerce(name, value, ENV_PREFIX + name.upper() if env_names else source) for name, value in raw.items()
    }


def _coerce(name: str, value: Any, where: str) -> Any:
    hint = _HINTS[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    target = args[0] if isinstance(hint, types.UnionType) and args else hint
    if value is None or (isinstance(value, str) and not value.strip() and target is not str):
        if optional:
            return None
        raise ConfigError(f"{where}: {name} needs a value")
    if isinstance(value, target) and not (target is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if target is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if target is int:
            return int(text.replace("_", ""))
        if target is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{where}: expected {target.__name__} for {name}, got {text!r}") from None
    return text


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_HINTS = typing.get_type_hints(Settings)
