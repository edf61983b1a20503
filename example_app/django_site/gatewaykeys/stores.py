"""bedrock-mw stores over the Django models, using Django's async ORM."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from fnmatch import fnmatchcase

from bedrock_mw import ProviderConfig, VirtualKeyConfig

from .models import Provider, VirtualKey


class DjangoCredentialStore:
    """``CredentialStore`` over :class:`VirtualKey` and :class:`Provider`."""

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        digest = digest.lower()
        row = await VirtualKey.objects.filter(key_sha256=digest).afirst()
        if row is None or not hmac.compare_digest(row.key_sha256.encode(), digest.encode()):
            return None
        return VirtualKeyConfig(
            id=row.id,
            key_sha256=row.key_sha256,
            providers=list(row.providers),
            default_region=row.default_region or None,
            model_aliases=dict(row.aliases or {}),
            allowed_models=list(row.allowed_models) if row.allowed_models is not None else None,
            disabled=row.disabled,
        )

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        row = await Provider.objects.filter(id=provider_id).afirst()
        return None if row is None else ProviderConfig.model_validate(row.config)


class DjangoAliasStore:
    """``AliasStore`` over ``VirtualKey.aliases``: exact names first, then glob patterns."""

    async def list_aliases(self, key: VirtualKeyConfig) -> Mapping[str, str]:
        row = await VirtualKey.objects.filter(id=key.id).only("aliases").afirst()
        return dict(row.aliases or {}) if row is not None else {}

    async def resolve_alias(self, key: VirtualKeyConfig, name: str) -> str | None:
        aliases = await self.list_aliases(key)
        if name in aliases:
            return aliases[name]
        for pattern, target in aliases.items():
            if any(ch in pattern for ch in "*?[") and fnmatchcase(name, pattern):
                return target
        return None
