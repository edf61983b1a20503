"""``serve``'s worker factory freezes start-up objects out of the garbage collector's sight."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from bedrock_mw import cli

CONFIG = {
    "providers": [
        {"id": "p", "auth": {"mode": "api_key", "api_key": "k"}, "region": "us-east-1"},
    ],
    "virtual_keys": [{"id": "v", "key": "vk-1", "providers": ["p"]}],
}


def test_the_serve_factory_freezes_what_start_up_left_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(CONFIG))
    monkeypatch.setenv("BEDROCK_MW_CONFIG", str(config))
    gc.unfreeze()
    try:
        app = cli.app_from_env()
        assert gc.get_freeze_count() > 0
        assert app is not None
    finally:
        gc.unfreeze()
