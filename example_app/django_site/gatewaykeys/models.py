"""Providers and virtual keys for the gateway, as Django models (only key digests are stored)."""

from __future__ import annotations

import hashlib

from django.db import models


class Provider(models.Model):
    """One AWS account/credential: ``config`` is a bedrock-mw ProviderConfig as JSON (keep it private)."""

    id = models.CharField(primary_key=True, max_length=128)
    config = models.JSONField()

    def __str__(self) -> str:
        return self.id


class VirtualKey(models.Model):
    """A key the gateway's callers present; looked up by the SHA-256 of the presented secret."""

    id = models.CharField(primary_key=True, max_length=128)
    key_sha256 = models.CharField(max_length=64, unique=True)
    providers = models.JSONField(default=list)
    default_region = models.CharField(max_length=32, null=True, blank=True)
    aliases = models.JSONField(default=dict, blank=True)
    allowed_models = models.JSONField(null=True, blank=True)
    disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id

    @staticmethod
    def digest(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()
