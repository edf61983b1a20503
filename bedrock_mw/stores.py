"""Where virtual keys, providers and aliases come from: protocols, static and caching implementations.

A host plugs in its own stores (a database, a secrets service) by implementing the two protocols;
they are async because such lookups do I/O. The static stores serve the config file. The caching
wrappers put a TTL cache in front of any store: hits *and* misses are cached for ``ttl_s``, so a
revoked or rotated key stops (or starts) working within ``ttl_s`` and a flood of bad keys does not
reach the backend; concurrent lookups of one entry share a single backend call.
"""

from __future__ import annotations

import hmac
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from fnmatch import fnmatchcase
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, cast

import anyio

from .config import AliasTarget, GatewayConfig, ProviderConfig, VirtualKeyConfig

__all__ = [
    "AliasStore",
    "AliasStoreSource",
    "CachingAliasStore",
    "CachingCredentialStore",
    "CredentialStore",
    "CredentialStoreSource",
    "StaticAliasStore",
    "StaticCredentialStore",
    "TtlCache",
    "resolve_alias_store",
    "resolve_store",
]

DEFAULT_MAX_ENTRIES = 10_000


class CredentialStore(Protocol):
    """Looks up virtual keys (by the SHA-256 hex digest of the presented secret) and providers."""

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        """The key whose digest this is, or ``None``; compare digests in constant time."""
        ...

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        """The provider with this id, or ``None``."""
        ...


class AliasStore(Protocol):
    """Per-key model aliases: friendly names (or glob patterns) → model strings or alias entries.

    An alias is a model string, or an :class:`~bedrock_mw.config.AliasEntry` that names the model and
    carries per-alias settings (a guardrail, ...).
    """

    async def resolve_alias(self, key: VirtualKeyConfig, name: str) -> AliasTarget | None:
        """What ``name`` stands for under ``key`` (a model string or an alias entry), or ``None``."""
        ...

    async def list_aliases(self, key: VirtualKeyConfig) -> Mapping[str, AliasTarget]:
        """Every alias of ``key`` (for listings and "not found" messages)."""
        ...


CredentialStoreSource: TypeAlias = (
    CredentialStore | Callable[[Any], CredentialStore | Awaitable[CredentialStore]]
)
AliasStoreSource: TypeAlias = AliasStore | Callable[[Any], AliasStore | Awaitable[AliasStore]]


class StaticCredentialStore:
    """Virtual keys and providers from the config file."""

    __slots__ = ("_keys", "_providers")

    def __init__(self, config: GatewayConfig) -> None:
        # Digests are computed once: VirtualKeyConfig.digest hashes a plaintext key on every access.
        self._keys = tuple((key.digest, key) for key in config.virtual_keys)
        self._providers = {provider.id: provider for provider in config.providers}

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        """The key with this digest; every key is compared, in constant time, with no early exit."""
        presented = digest.lower().encode()
        found: VirtualKeyConfig | None = None
        for stored, key in self._keys:
            if hmac.compare_digest(stored.encode(), presented) and found is None:
                found = key
        return found

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        """The provider with this id."""
        return self._providers.get(provider_id)


def _is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


class StaticAliasStore:
    """Aliases from each key's ``model_aliases``: exact names first, then glob keys in declaration order."""

    __slots__ = ()

    def __init__(self, config: GatewayConfig | None = None) -> None:
        # Aliases live on the key itself; ``config`` is accepted for symmetry with the other stores.
        del config

    async def resolve_alias(self, key: VirtualKeyConfig, name: str) -> AliasTarget | None:
        """The target of ``name`` among ``key``'s aliases."""
        aliases = key.model_aliases
        exact = aliases.get(name)
        if exact is not None:
            return exact
        for pattern, target in aliases.items():
            if _is_pattern(pattern) and fnmatchcase(name, pattern):
                return target
        return None

    async def list_aliases(self, key: VirtualKeyConfig) -> Mapping[str, AliasTarget]:
        """All of ``key``'s aliases, patterns included."""
        return dict(key.model_aliases)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    """One in-progress backend lookup that concurrent callers wait on."""

    __slots__ = ("done", "error", "ok", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.ok = False
        self.value: V | None = None
        self.error: Exception | None = None


class TtlCache(Generic[K, V]):
    """A bounded LRU cache whose entries live ``ttl_s`` from when they were loaded.

    ``None`` is a value like any other, so misses are cached too. A hit does not extend an entry's
    life: ``ttl_s`` bounds how stale an answer can be. Concurrent ``get`` calls for one key share a
    single ``load``; if that load raises, every waiter sees the error and nothing is cached; if the
    loading task is cancelled, a waiter takes over the load.
    """

    __slots__ = ("_clock", "_entries", "_flights", "_max_entries", "_ttl_s")

    def __init__(
        self,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s must be >= 0")
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._flights: dict[K, _Flight[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value of ``key``, loading it (once, however many callers wait) when absent or stale."""
        if self._ttl_s == 0:
            return await load()
        while True:
            entry = self._entries.get(key)
            if entry is not None:
                if entry[0] > self._clock():
                    self._entries.move_to_end(key)
                    return entry[1]
                del self._entries[key]
            flight = self._flights.get(key)
            if flight is None:
                return await self._load(key, load)
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.ok:
                return cast(V, flight.value)
            # The loading task was cancelled: go round and load (or join a newer flight).

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        flight: _Flight[V] = _Flight()
        self._flights[key] = flight
        try:
            value = await load()
        except Exception as exc:
            flight.error = exc
            raise
        else:
            flight.ok, flight.value = True, value
            self._entries[key] = (self._clock() + self._ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            return value
        finally:
            del self._flights[key]
            flight.done.set()

    def invalidate(self, key: K | None = None) -> None:
        """Forget one entry, or every entry when ``key`` is ``None``."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class CachingCredentialStore:
    """A :class:`CredentialStore` in front of another, caching hits and misses for ``ttl_s`` (0: off)."""

    __slots__ = ("_inner", "_keys", "_providers")

    def __init__(
        self,
        inner: CredentialStore,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._inner = inner
        self._keys: TtlCache[str, VirtualKeyConfig | None] = TtlCache(
            ttl_s, clock=clock, max_entries=max_entries
        )
        self._providers: TtlCache[str, ProviderConfig | None] = TtlCache(
            ttl_s, clock=clock, max_entries=max_entries
        )

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        """The inner store's answer for ``digest``, at most ``ttl_s`` old."""
        return await self._keys.get(digest.lower(), lambda: self._inner.get_virtual_key(digest))

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        """The inner store's answer for ``provider_id``, at most ``ttl_s`` old."""
        return await self._providers.get(provider_id, lambda: self._inner.get_provider(provider_id))

    def invalidate(self) -> None:
        """Forget everything: the next lookups go to the inner store (e.g. right after a revocation)."""
        self._keys.invalidate()
        self._providers.invalidate()


class CachingAliasStore:
    """An :class:`AliasStore` in front of another, caching answers (``None`` too) for ``ttl_s`` (0: off)."""

    __slots__ = ("_inner", "_lists", "_names")

    def __init__(
        self,
        inner: AliasStore,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._inner = inner
        self._names: TtlCache[tuple[str, str, str], AliasTarget | None] = TtlCache(
            ttl_s, clock=clock, max_entries=max_entries
        )
        self._lists: TtlCache[tuple[str, str], Mapping[str, AliasTarget]] = TtlCache(
            ttl_s, clock=clock, max_entries=max_entries
        )

    async def resolve_alias(self, key: VirtualKeyConfig, name: str) -> AliasTarget | None:
        """The inner store's answer for ``(key, name)``, at most ``ttl_s`` old."""
        # Entries are per key (id and digest), so one key never sees another's aliases.
        return await self._names.get((key.id, key.digest, name), lambda: self._inner.resolve_alias(key, name))

    async def list_aliases(self, key: VirtualKeyConfig) -> Mapping[str, AliasTarget]:
        """The inner store's listing for ``key``, at most ``ttl_s`` old."""
        return await self._lists.get((key.id, key.digest), lambda: self._inner.list_aliases(key))

    def invalidate(self) -> None:
        """Forget everything."""
        self._names.invalidate()
        self._lists.invalidate()


async def resolve_store(source: CredentialStoreSource, request: Any) -> CredentialStore:
    """The credential store for ``request``: ``source`` itself, or what the factory ``source`` returns."""
    if hasattr(source, "get_virtual_key"):
        return cast(CredentialStore, source)
    made = source(request)
    store = await made if inspect.isawaitable(made) else made
    if not hasattr(store, "get_virtual_key"):
        raise TypeError(f"credential store factory returned {type(store).__name__}, not a CredentialStore")
    return store


async def resolve_alias_store(source: AliasStoreSource, request: Any) -> AliasStore:
    """The alias store for ``request``: ``source`` itself, or what the factory ``source`` returns."""
    if hasattr(source, "resolve_alias"):
        return cast(AliasStore, source)
    made = source(request)
    store = await made if inspect.isawaitable(made) else made
    if not hasattr(store, "resolve_alias"):
        raise TypeError(f"alias store factory returned {type(store).__name__}, not an AliasStore")
    return store
