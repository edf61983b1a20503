"""The Redis response store against a real redis-server; the same contract as the in-memory one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from bedrock_mw.response_store import MemoryResponseStore, RedisResponseStore, ResponseStore, StoredResponse

pytestmark = pytest.mark.anyio


def record(response_id: str) -> StoredResponse:
    return StoredResponse(
        {"id": response_id, "object": "response", "output": []},
        [
            {
                "id": "msg_1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "é"}],
            }
        ],
        [{"type": "message", "role": "user", "content": "é"}],
    )


@pytest.fixture(params=["memory", "redis"])
async def store(request: Any, redis_url: str, redis_prefix: str) -> AsyncIterator[ResponseStore]:
    made: ResponseStore = (
        MemoryResponseStore(ttl_s=0.5)
        if request.param == "memory"
        else RedisResponseStore(redis_url, prefix=redis_prefix, ttl_s=0.5)
    )
    yield made
    await made.aclose()


async def test_a_stored_response_reads_back_equal_for_its_own_key_only(store: ResponseStore) -> None:
    await store.put("key-a", record("resp_1"))
    assert await store.get("key-a", "resp_1") == record("resp_1")
    assert await store.get("key-b", "resp_1") is None
    assert not await store.delete("key-b", "resp_1")
    assert await store.delete("key-a", "resp_1")
    assert await store.get("key-a", "resp_1") is None


async def test_a_stored_response_expires_after_its_ttl(store: ResponseStore) -> None:
    await store.put("key-a", record("resp_2"))
    for _ in range(100):  # no timed assertion: wait until it is gone, bounded
        if await store.get("key-a", "resp_2") is None:
            break
        await anyio.sleep(0.1)
    assert await store.get("key-a", "resp_2") is None


async def test_the_memory_store_keeps_only_the_newest_records() -> None:
    store = MemoryResponseStore(max_responses=2)
    for n in range(3):
        await store.put("k", record(f"resp_{n}"))
    assert await store.get("k", "resp_0") is None
    assert await store.get("k", "resp_2") is not None


def test_the_config_picks_the_redis_store_on_the_limiters_connection(redis_url: str) -> None:
    from bedrock_mw.config import ConfigError, load_config
    from bedrock_mw.response_store import default_response_store

    config = load_config({"limits": {"redis_url": redis_url}, "responses": {"store": "redis"}})
    assert isinstance(default_response_store(config), RedisResponseStore)
    assert isinstance(default_response_store(load_config({})), MemoryResponseStore)
    with pytest.raises(ConfigError, match="redis_url"):
        load_config({"responses": {"store": "redis"}})
