"""Settings for the minimal Django site that serves the gateway beside Django.

    DJANGO_SETTINGS_MODULE=example_app.django_site.settings uvicorn example_app.django_site.asgi:application

Gateway settings: ``BEDROCK_MW_CONFIG`` (a config file path) or, without it, one provider built
from ``BEDROCK_ENDPOINT_URL`` (a Bedrock emulator) or real Bedrock via the default credential chain.
Keys and providers themselves are rows of the ``gatewaykeys`` app's tables.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "example_app.django_site.gatewaykeys",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "example_app.django_site.urls"
ASGI_APPLICATION = "example_app.django_site.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

BEDROCK_MW_PREFIX = "/llm"
BEDROCK_MW_CONFIG = os.environ.get("BEDROCK_MW_CONFIG")
