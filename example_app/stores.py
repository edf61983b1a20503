"""SQL-backed stores for the gateway (SQLAlchemy 2 async; SQLite through aiosqlite by default).

Tables:

* ``providers``     — one row per provider, its :class:`bedrock_mw.ProviderConfig` as a JSON blob;
* ``virtual_keys``  — id, ``key_sha256`` (never the key itself), providers, default region,
  aliases, allowed models, disabled;
* ``usage``         — one row per gateway request, written by :class:`UsageRecorder`;
* ``responses``     — stored OpenAI Responses (``store: true``), per virtual key, kept by
  :class:`SqlResponseStore`.

The stores implement bedrock-mw's ``CredentialStore``, ``AliasStore`` and ``ResponseStore``
protocols; the schema is created, and the demo data seeded, on first use (so the app also works when
no ASGI lifespan runs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import anyio
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, LargeBinary, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bedrock_mw import ProviderConfig, StoredResponse, UsageRecord, VirtualKeyConfig

__all__ = [
    "DEFAULT_DB_URL",
    "Base",
    "Database",
    "DemoSeed",
    "ProviderRow",
    "ResponseRow",
    "SqlAliasStore",
    "SqlCredentialStore",
    "SqlResponseStore",
    "UsageRecorder",
    "UsageRow",
    "VirtualKeyRow",
]

DEFAULT_DB_URL = "sqlite+aiosqlite:///example_app.db"


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ProviderRow(Base):
    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # The provider's config as given (secrets included, so keep this table private).
    config: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class VirtualKeyRow(Base):
    __tablename__ = "virtual_keys"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    providers: Mapped[list[str]] = mapped_column(JSON)
    default_region: Mapped[str | None] = mapped_column(String(32), default=None)
    aliases: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def to_config(self) -> VirtualKeyConfig:
        return VirtualKeyConfig(
            id=self.id,
            key_sha256=self.key_sha256,
            providers=list(self.providers),
            default_region=self.default_region,
            model_aliases=dict(self.aliases or {}),
            allowed_models=list(self.allowed_models) if self.allowed_models is not None else None,
            disabled=self.disabled,
        )


class UsageRow(Base):
    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    request_id: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(128), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(256))
    provider_id: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(32))
    model_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[int] = mapped_column(Integer)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    time_to_first_token_ms: Mapped[float | None] = mapped_column(Float, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_type: Mapped[str | None] = mapped_column(String(64), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "request_id": self.request_id,
            "key_id": self.key_id,
            "endpoint": self.endpoint,
            "model": self.model,
            "provider_id": self.provider_id,
            "region": self.region,
            "model_id": self.model_id,
            "status": self.status,
            "stream": self.stream,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_write_input_tokens": self.cache_write_input_tokens,
            "latency_ms": self.latency_ms,
            "time_to_first_token_ms": self.time_to_first_token_ms,
            "attempts": self.attempts,
            "error_type": self.error_type,
        }


class ResponseRow(Base):
    __tablename__ = "responses"

    key_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DemoSeed:
    """What to seed: one provider (config dict) and one demo key pointing at it."""

    def __init__(
        self, provider: Mapping[str, Any], *, demo_key: str = "vk-demo", demo_key_id: str = "demo"
    ) -> None:
        ProviderConfig.model_validate(provider)  # fail at start-up, not on the first request
        self.provider = dict(provider)
        self.demo_key = demo_key
        self.demo_key_id = demo_key_id


class Database:
    """The engine and session factory; creates the schema and seeds once, on first use."""

    def __init__(self, url: str | None = None, *, seed: DemoSeed | None = None) -> None:
        self.url = url or os.environ.get("EXAMPLE_DB_URL") or DEFAULT_DB_URL
        self.engine: AsyncEngine = create_async_engine(self.url)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self.seed = seed
        self._ready = False
        self._lock: anyio.Lock | None = None

    async def ready(self) -> None:
        """Create the tables and seed the demo data (once per process; cheap afterwards)."""
        if self._ready:
            return
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._ready:
                return
            async with self.engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            if self.seed is not None:
                await self._seed(self.seed)
            self._ready = True

    async def _seed(self, seed: DemoSeed) -> None:
        provider_id = seed.provider["id"]
        async with self.sessions.begin() as session:
            row = await session.get(ProviderRow, provider_id)
            # The default provider follows the environment (the emulator's port changes per run).
            if row is None:
                session.add(ProviderRow(id=provider_id, config=json.dumps(seed.provider)))
            else:
                row.config = json.dumps(seed.provider)
            key = await session.get(VirtualKeyRow, seed.demo_key_id)
            digest = hashlib.sha256(seed.demo_key.encode()).hexdigest()
            if key is None:
                session.add(
                    VirtualKeyRow(
                        id=seed.demo_key_id,
                        key_sha256=digest,
                        providers=[provider_id],
                        aliases={"fast": "claude-haiku-4-5"},
                    )
                )
            elif key.key_sha256 == digest:
                key.providers = [provider_id]  # the demo key follows the default provider too

    async def add_key(
        self,
        key_id: str,
        secret: str,
        providers: Sequence[str],
        *,
        aliases: Mapping[str, str] | None = None,
        allowed_models: Sequence[str] | None = None,
        default_region: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Store a virtual key (only its SHA-256 digest is kept)."""
        await self.ready()
        async with self.sessions.begin() as session:
            session.add(
                VirtualKeyRow(
                    id=key_id,
                    key_sha256=hashlib.sha256(secret.encode()).hexdigest(),
                    providers=list(providers),
                    default_region=default_region,
                    aliases=dict(aliases or {}),
                    allowed_models=list(allowed_models) if allowed_models is not None else None,
                    disabled=disabled,
                )
            )

    async def recent_usage(self, limit: int = 50) -> list[UsageRow]:
        await self.ready()
        async with self.sessions() as session:
            result = await session.scalars(select(UsageRow).order_by(UsageRow.id.desc()).limit(limit))
            return list(result)

    async def dispose(self) -> None:
        await self.engine.dispose()


class SqlCredentialStore:
    """bedrock-mw ``CredentialStore`` over the ``virtual_keys`` and ``providers`` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        await self.db.ready()
        digest = digest.lower()
        async with self.db.sessions() as session:
            row = await session.scalar(select(VirtualKeyRow).where(VirtualKeyRow.key_sha256 == digest))
        # The indexed lookup finds the row; the constant-time compare is what grants access.
        if row is None or not hmac.compare_digest(row.key_sha256.encode(), digest.encode()):
            return None
        return row.to_config()

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        await self.db.ready()
        async with self.db.sessions() as session:
            row = await session.get(ProviderRow, provider_id)
        if row is None:
            return None
        return ProviderConfig.model_validate(json.loads(row.config))


class SqlAliasStore:
    """bedrock-mw ``AliasStore`` over ``virtual_keys.aliases``: exact names first, then glob patterns."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_aliases(self, key: VirtualKeyConfig) -> Mapping[str, str]:
        await self.db.ready()
        async with self.db.sessions() as session:
            aliases = await session.scalar(select(VirtualKeyRow.aliases).where(VirtualKeyRow.id == key.id))
        return dict(aliases or {})

    async def resolve_alias(self, key: VirtualKeyConfig, name: str) -> str | None:
        aliases = await self.list_aliases(key)
        if name in aliases:
            return aliases[name]
        for pattern, target in aliases.items():
            if any(ch in pattern for ch in "*?[") and fnmatchcase(name, pattern):
                return target
        return None


class UsageRecorder:
    """The gateway's ``usage_hook``: one ``usage`` row per request."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, record: UsageRecord) -> None:
        await self.db.ready()
        usage = record.usage
        async with self.db.sessions.begin() as session:
            session.add(
                UsageRow(
                    request_id=record.request_id,
                    key_id=record.key_id,
                    endpoint=record.endpoint,
                    model=record.model,
                    provider_id=record.provider_id,
                    region=record.region,
                    model_id=record.model_id,
                    status=record.status,
                    stream=record.stream,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_input_tokens=usage.cache_read_input_tokens,
                    cache_write_input_tokens=usage.cache_write_input_tokens,
                    latency_ms=round(record.latency_s * 1000, 2),
                    time_to_first_token_ms=(
                        round(record.time_to_first_token_s * 1000, 2)
                        if record.time_to_first_token_s is not None
                        else None
                    ),
                    attempts=record.attempts,
                    error_type=record.error_type,
                )
            )


class SqlResponseStore:
    """bedrock-mw's ``ResponseStore`` on SQL: one row per (key, response), read back until it expires."""

    def __init__(self, db: Database, *, ttl_s: float = 86_400.0) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)

    async def put(self, key_id: str, record: StoredResponse) -> None:
        await self.db.ready()
        row = ResponseRow(
            key_id=key_id,
            response_id=str(record.response["id"]),
            record=record.to_json(),
            expires_at=_now() + self.ttl,
        )
        async with self.db.sessions.begin() as session:
            await session.merge(row)

    async def get(self, key_id: str, response_id: str) -> StoredResponse | None:
        await self.db.ready()
        async with self.db.sessions() as session:
            row = await session.get(ResponseRow, (key_id, response_id))
        if row is None or _aware(row.expires_at) <= _now():
            return None
        return StoredResponse.from_json(row.record)

    async def delete(self, key_id: str, response_id: str) -> bool:
        await self.db.ready()
        async with self.db.sessions.begin() as session:
            result = await session.execute(
                delete(ResponseRow).where(
                    ResponseRow.key_id == key_id, ResponseRow.response_id == response_id
                )
            )
        return bool(getattr(result, "rowcount", 0))

    async def aclose(self) -> None:
        """The engine belongs to the :class:`Database`, closed by the host's lifespan."""


def _aware(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive (in UTC).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
