"""Stored Responses: what ``store: true`` keeps so ``previous_response_id`` can continue a conversation.

A :class:`ResponseStore` is injected by the host like the other stores (``create_gateway(
response_store=...)``). Every method takes the caller's virtual-key id, so a key only ever sees its own
responses. Two implementations ship: :class:`MemoryResponseStore` (the default: a size bound and a TTL,
per process) and :class:`RedisResponseStore` (shared by workers, on the limiter's Redis settings). The
example app adds one on SQL. See ``docs/responses.md``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .config import GatewayConfig


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response: the object as answered, its input items, and the items to continue with.

    ``history`` is the whole conversation up to and including this response's output, as input items
    (reasoning sealed), so a continuation needs one read.
    """

    # JSON as the host's store keeps it (read-only): the gateway hands in its typed response object
    # and items, a store hands back its own parse of them.
    response: Mapping[str, Any]
    input_items: Sequence[Mapping[str, Any]]
    history: Sequence[Mapping[str, Any]]

    def to_json(self) -> bytes:
        """The record as JSON (for stores that keep bytes)."""
        return orjson.dumps(
            {"response": self.response, "input_items": self.input_items, "history": self.history}
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> StoredResponse:
        """A record from :meth:`to_json` output."""
        value = orjson.loads(data)
        return cls(value["response"], value["input_items"], value["history"])


class ResponseStore(Protocol):
    """Where stored responses live; every call is scoped to one virtual key."""

    async def put(self, key_id: str, record: StoredResponse) -> None: ...
    async def get(self, key_id: str, response_id: str) -> StoredResponse | None: ...
    async def delete(self, key_id: str, response_id: str) -> bool: ...
    async def aclose(self) -> None: ...


class MemoryResponseStore:
    """In-process store: the newest ``max_responses`` records, each kept for ``ttl_s`` seconds."""

    def __init__(self, max_responses: int = 10_000, ttl_s: float = 86_400.0) -> None:
        self._max = max_responses
        self._ttl = ttl_s
        self._records: OrderedDict[tuple[str, str], tuple[float, StoredResponse]] = OrderedDict()

    async def put(self, key_id: str, record: StoredResponse) -> None:
        slot = (key_id, str(record.response["id"]))
        self._records[slot] = (time.monotonic() + self._ttl, record)
        self._records.move_to_end(slot)
        while len(self._records) > self._max:
            self._records.popitem(last=False)

    async def get(self, key_id: str, response_id: str) -> StoredResponse | None:
        entry = self._records.get((key_id, response_id))
        if entry is None:
            return None
        expires, record = entry
        if expires <= time.monotonic():
            del self._records[(key_id, response_id)]
            return None
        return record

    async def delete(self, key_id: str, response_id: str) -> bool:
        return self._records.pop((key_id, response_id), None) is not None

    async def aclose(self) -> None:
        self._records.clear()


class RedisResponseStore:
    """Redis store: one string per response under ``<prefix>:responses:<key id>:<response id>``."""

    def __init__(self, url: str, *, prefix: str = "bedrock-mw", ttl_s: float = 86_400.0) -> None:
        from redis.asyncio import Redis  # the redis extra; imported only when this store is used

        self._redis = Redis.from_url(url)
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_s * 1000))

    def _key(self, key_id: str, response_id: str) -> str:
        return f"{self._prefix}:responses:{key_id}:{response_id}"

    async def put(self, key_id: str, record: StoredResponse) -> None:
        key = self._key(key_id, str(record.response["id"]))
        await self._redis.set(key, record.to_json(), px=self._ttl_ms)

    async def get(self, key_id: str, response_id: str) -> StoredResponse | None:
        data = await self._redis.get(self._key(key_id, response_id))
        return None if data is None else StoredResponse.from_json(data)

    async def delete(self, key_id: str, response_id: str) -> bool:
        return bool(await self._redis.delete(self._key(key_id, response_id)))

    async def aclose(self) -> None:
        await self._redis.aclose()


def default_response_store(config: GatewayConfig) -> ResponseStore:
    """The store the config asks for: in this process, or on the limiter's Redis."""
    settings = config.responses
    if settings.store == "redis" and config.limits.redis_url is not None:
        return RedisResponseStore(
            config.limits.redis_url.get_secret_value(),
            prefix=config.limits.redis_prefix,
            ttl_s=settings.store_ttl_s,
        )
    return MemoryResponseStore(settings.store_max_responses, settings.store_ttl_s)
