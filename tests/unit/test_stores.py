"""Static and caching stores: lookups, TTL expiry, negative caching, LRU bound, coalescing; sources."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from bedrock_mw.config import GatewayConfig, ProviderConfig, VirtualKeyConfig
from bedrock_mw.stores import (
    CachingAliasStore,
    CachingCredentialStore,
    CredentialStore,
    StaticAliasStore,
    StaticCredentialStore,
    TtlCache,
    resolve_alias_store,
    resolve_store,
)

pytestmark = pytest.mark.anyio


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


CONFIG = GatewayConfig.model_validate(
    {
        "providers": [{"id": "p1", "region": "us-east-1", "auth": {"mode": "default_chain"}}],
        "virtual_keys": [
            {
                "id": "alice",
                "key": "sk-alice",
                "providers": ["p1"],
                "model_aliases": {"fast": "claude-haiku-4-5"},
            },
            {"id": "bob", "key_sha256": _digest("sk-bob").upper(), "providers": ["p1"]},
        ],
    }
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """A credential store over a mutable dict that counts backend calls."""

    def __init__(self, keys: dict[str, VirtualKeyConfig], delay: float = 0.0) -> None:
        self.keys = keys
        self.calls = 0
        self.delay = delay
        self.fail: Exception | None = None

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        self.calls += 1
        if self.delay:
            await anyio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.keys.get(digest)

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        self.calls += 1
        return CONFIG.provider(provider_id)


ALICE = CONFIG.virtual_keys[0]
BOB = CONFIG.virtual_keys[1]


async def test_static_store_finds_keys_by_digest_in_either_key_form() -> None:
    store = StaticCredentialStore(CONFIG)
    assert await store.get_virtual_key(_digest("sk-alice")) is ALICE
    assert await store.get_virtual_key(_digest("sk-bob")) is BOB
    assert await store.get_virtual_key(_digest("sk-eve")) is None
    assert await store.get_provider("p1") is CONFIG.providers[0]
    assert await store.get_provider("nope") is None


async def test_static_store_compares_every_digest_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert await StaticCredentialStore(CONFIG).get_virtual_key(_digest("sk-alice")) is ALICE
    assert len(seen) == 2  # no early exit on the first match


async def test_static_alias_store_prefers_exact_names_then_globs_in_order() -> None:
    key = VirtualKeyConfig.model_validate(
        {
            "id": "k",
            "key": "sk",
            "providers": ["p1"],
            "model_aliases": {"claude-*": "b", "claude-opus-*": "c", "claude-opus-4": "a"},
        }
    )
    aliases = StaticAliasStore(CONFIG)
    assert await aliases.resolve_alias(key, "claude-opus-4") == "a"
    assert await aliases.resolve_alias(key, "claude-opus-9") == "b"  # first glob in declaration order
    assert await aliases.resolve_alias(key, "gpt") is None
    assert await aliases.list_aliases(key) == {"claude-*": "b", "claude-opus-*": "c", "claude-opus-4": "a"}


async def test_caching_store_serves_hits_until_the_ttl_then_asks_again() -> None:
    inner = CountingStore({_digest("sk-alice"): ALICE})
    clock = FakeClock()
    cached = CachingCredentialStore(inner, ttl_s=30, clock=clock)
    digest = _digest("sk-alice")
    assert await cached.get_virtual_key(digest) is ALICE
    clock.now += 29.9
    assert await cached.get_virtual_key(digest) is ALICE
    assert inner.calls == 1
    clock.now += 0.2
    assert await cached.get_virtual_key(digest) is ALICE
    assert inner.calls == 2


async def test_caching_store_caches_misses_too() -> None:
    inner = CountingStore({})
    cached = CachingCredentialStore(inner, ttl_s=30, clock=FakeClock())
    for _ in range(5):
        assert await cached.get_virtual_key(_digest("sk-eve")) is None
    assert inner.calls == 1


async def test_revocation_and_new_keys_take_effect_within_the_ttl() -> None:
    digest = _digest("sk-alice")
    inner = CountingStore({digest: ALICE})
    clock = FakeClock()
    cached = CachingCredentialStore(inner, ttl_s=10, clock=clock)
    assert await cached.get_virtual_key(digest) is ALICE
    del inner.keys[digest]  # revoked in the backend
    assert await cached.get_virtual_key(digest) is ALICE  # still cached
    clock.now += 10
    assert await cached.get_virtual_key(digest) is None
    inner.keys[digest] = ALICE  # re-issued: the cached miss also expires
    clock.now += 10
    assert await cached.get_virtual_key(digest) is ALICE


async def test_invalidate_makes_a_revocation_visible_at_once() -> None:
    digest = _digest("sk-alice")
    inner = CountingStore({digest: ALICE})
    cached = CachingCredentialStore(inner, ttl_s=300, clock=FakeClock())
    await cached.get_virtual_key(digest)
    inner.keys.clear()
    cached.invalidate()
    assert await cached.get_virtual_key(digest) is None


async def test_ttl_zero_disables_caching() -> None:
    inner = CountingStore({})
    cached = CachingCredentialStore(inner, ttl_s=0)
    await cached.get_virtual_key("a")
    await cached.get_virtual_key("a")
    assert inner.calls == 2


async def test_provider_lookups_are_cached_too() -> None:
    inner = CountingStore({})
    cached = CachingCredentialStore(inner, ttl_s=5, clock=FakeClock())
    assert await cached.get_provider("p1") is CONFIG.providers[0]
    assert await cached.get_provider("p1") is CONFIG.providers[0]
    assert inner.calls == 1


async def test_concurrent_lookups_of_one_digest_share_one_backend_call() -> None:
    digest = _digest("sk-alice")
    inner = CountingStore({digest: ALICE}, delay=0.05)
    cached = CachingCredentialStore(inner, ttl_s=30)
    results: list[VirtualKeyConfig | None] = []

    async def lookup() -> None:
        results.append(await cached.get_virtual_key(digest))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(lookup)
    assert results == [ALICE] * 20
    assert inner.calls == 1


async def test_a_failed_lookup_reaches_every_waiter_and_is_not_cached() -> None:
    inner = CountingStore({}, delay=0.05)
    inner.fail = RuntimeError("backend down")
    cached = CachingCredentialStore(inner, ttl_s=30)
    errors: list[BaseException] = []

    async def lookup() -> None:
        try:
            await cached.get_virtual_key("d")
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(lookup)
    assert len(errors) == 3
    assert inner.calls == 1
    inner.fail = None
    assert await cached.get_virtual_key("d") is None
    assert inner.calls == 2


async def test_a_waiter_takes_over_when_the_loading_task_is_cancelled() -> None:
    cache: TtlCache[str, int] = TtlCache(30)
    started = anyio.Event()
    loads = 0

    async def slow() -> int:
        nonlocal loads
        loads += 1
        started.set()
        await anyio.sleep(10)
        return 1

    async def quick() -> int:
        nonlocal loads
        loads += 1
        return 2

    result: list[int] = []
    async with anyio.create_task_group() as tg:
        leader = anyio.CancelScope()

        async def lead() -> None:
            with leader:
                await cache.get("k", slow)

        async def follow() -> None:
            await started.wait()
            result.append(await cache.get("k", quick))

        tg.start_soon(lead)
        tg.start_soon(follow)
        await started.wait()
        await anyio.sleep(0.01)
        leader.cancel()
    assert result == [2]
    assert loads == 2


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache: TtlCache[str, str] = TtlCache(30, clock=FakeClock(), max_entries=2)

    async def value(v: str) -> str:
        return v

    await cache.get("a", lambda: value("a"))
    await cache.get("b", lambda: value("b"))
    await cache.get("a", lambda: value("a"))  # a is now most recent
    await cache.get("c", lambda: value("c"))
    assert len(cache) == 2
    assert await cache.get("a", lambda: value("reloaded")) == "a"
    assert await cache.get("b", lambda: value("reloaded")) == "reloaded"


def test_the_cache_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        TtlCache(-1)
    with pytest.raises(ValueError):
        TtlCache(1, max_entries=0)


class CountingAliases:
    def __init__(self) -> None:
        self.calls = 0

    async def resolve_alias(self, key: VirtualKeyConfig, name: str) -> str | None:
        self.calls += 1
        return key.model_aliases.get(name)

    async def list_aliases(self, key: VirtualKeyConfig) -> Mapping[str, str]:
        self.calls += 1
        return key.model_aliases


async def test_caching_alias_store_caches_per_key_and_name() -> None:
    inner = CountingAliases()
    clock = FakeClock()
    cached = CachingAliasStore(inner, ttl_s=5, clock=clock)
    assert await cached.resolve_alias(ALICE, "fast") == "claude-haiku-4-5"
    assert await cached.resolve_alias(ALICE, "fast") == "claude-haiku-4-5"
    assert await cached.resolve_alias(BOB, "fast") is None  # another key: its own entry
    assert await cached.resolve_alias(ALICE, "nope") is None
    assert await cached.resolve_alias(ALICE, "nope") is None
    assert inner.calls == 3
    assert await cached.list_aliases(ALICE) == {"fast": "claude-haiku-4-5"}
    assert await cached.list_aliases(ALICE) == {"fast": "claude-haiku-4-5"}
    assert inner.calls == 4
    clock.now += 5
    await cached.resolve_alias(ALICE, "fast")
    assert inner.calls == 5
    cached.invalidate()
    await cached.list_aliases(ALICE)
    assert inner.calls == 6


async def test_resolve_store_accepts_a_store_a_factory_or_an_async_factory() -> None:
    store = StaticCredentialStore(CONFIG)
    request: Any = object()
    assert await resolve_store(store, request) is store
    assert await resolve_store(lambda req: store, request) is store

    async def make(req: Any) -> CredentialStore:
        assert req is request
        return store

    assert await resolve_store(make, request) is store
    with pytest.raises(TypeError):
        await resolve_store(lambda req: "not a store", request)  # type: ignore[arg-type,return-value]


async def test_resolve_alias_store_accepts_a_store_or_a_factory() -> None:
    aliases = StaticAliasStore()
    request: Any = object()
    assert await resolve_alias_store(aliases, request) is aliases
    assert await resolve_alias_store(lambda req: aliases, request) is aliases

    async def make(req: Any) -> StaticAliasStore:
        return aliases

    assert await resolve_alias_store(make, request) is aliases
    with pytest.raises(TypeError):
        await resolve_alias_store(lambda req: 42, request)  # type: ignore[arg-type,return-value]
