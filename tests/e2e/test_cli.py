"""The ``bedrock-mw`` command: ``serve`` with the issue's config file, and ``check``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bedrock_mw.cli import main
from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_API_KEY,
    EMULATOR_SECRET_ACCESS_KEY,
    BedrockEmulator,
    Fault,
)

TEAM_B_KEY = "vk-team-b-secret"


def issue_config(endpoint_url: str) -> dict[str, Any]:
    """The configuration shape from the foundation issue, pointed at the emulator."""
    return {
        "providers": [
            {
                "id": "bedrock-us",
                "auth": {
                    "mode": "access_keys",
                    "access_key_id": EMULATOR_ACCESS_KEY_ID,
                    "secret_access_key": "${AWS_SECRET}",
                    "session_token": None,
                },
                "region": "us-east-1",
                "endpoint_url": endpoint_url,
                "inference_profile_arn": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            },
            {
                "id": "bedrock-eu",
                "auth": {"mode": "api_key", "api_key": "${BEDROCK_API_KEY}"},
                "region": "eu-west-1",
                "endpoint_url": endpoint_url,
            },
            {
                "id": "bedrock-pod",
                "auth": {"mode": "default_chain"},
                "region": "us-west-2",
                "endpoint_url": endpoint_url,
            },
        ],
        "virtual_keys": [
            {
                "id": "team-a",
                "key": "vk-team-a-secret",
                "providers": ["bedrock-us", "bedrock-eu"],
                "default_region": "us-east-1",
                "model_aliases": {"claude-haiku": "bedrock/us.anthropic.claude-haiku-4-5-20251001"},
            },
            {
                "id": "team-b",
                "key_sha256": hashlib.sha256(TEAM_B_KEY.encode()).hexdigest(),
                "providers": ["bedrock-eu"],
                "allowed_models": ["anthropic.claude-*", "amazon.titan-embed-*"],
            },
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(
    bedrock_emulator: BedrockEmulator, tmp_path: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``bedrock-mw serve`` on the issue's config in a child process and wait for /livez."""
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(issue_config(bedrock_emulator.endpoint_url)))
    port = free_port()
    env = {
        **os.environ,
        "AWS_SECRET": EMULATOR_SECRET_ACCESS_KEY,
        "BEDROCK_API_KEY": EMULATOR_API_KEY,
        # The pod provider's default chain finds these, as it would an instance role.
        "AWS_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": EMULATOR_SECRET_ACCESS_KEY,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    command = [
        sys.executable,
        "-m",
        "bedrock_mw.cli",
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        *extra,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/livez", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"bedrock-mw serve did not start: {process.communicate()[0]!r}")


@pytest.fixture
def served(bedrock_emulator: BedrockEmulator, tmp_path: Path) -> Any:
    process, base = serve_command(bedrock_emulator, tmp_path)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def log_lines(output: bytes) -> list[dict[str, Any]]:
    """The JSON lines ``serve`` printed for the ``bedrock_mw`` logger."""
    lines = []
    for line in output.decode(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_serve_prints_the_gateway_access_log_as_json_lines(
    bedrock_emulator: BedrockEmulator, tmp_path: Path
) -> None:
    process, base = serve_command(bedrock_emulator, tmp_path, "--log-level", "debug")
    try:
        r = httpx.post(
            base + "/v1/messages",
            headers={"x-api-key": "vk-team-a-secret"},
            json={"model": "claude-haiku", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert r.status_code == 200, r.text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    (record,) = [line for line in log_lines(output) if line["message"] == "request"]
    assert record["logger"] == "bedrock_mw" and record["level"] == "INFO"
    assert record["key_id"] == "team-a" and record["status"] == 200 and record["endpoint"]
    assert b"vk-team-a-secret" not in output


def test_serve_at_warning_level_prints_no_access_log(
    bedrock_emulator: BedrockEmulator, tmp_path: Path
) -> None:
    process, base = serve_command(bedrock_emulator, tmp_path, "--log-level", "warning")
    try:
        r = httpx.post(
            base + "/v1/messages",
            headers={"x-api-key": "vk-team-a-secret"},
            json={"model": "claude-haiku", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert r.status_code == 200, r.text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert [line for line in log_lines(output) if line["message"] == "request"] == []


def test_sigterm_cuts_a_held_stream_after_the_graceful_timeout_and_records_it(
    bedrock_emulator: BedrockEmulator, tmp_path: Path
) -> None:
    # Every event takes ten minutes: without the graceful timeout uvicorn would wait for the stream.
    bedrock_emulator.faults.add(Fault(event_delay_s=600.0))
    process, base = serve_command(bedrock_emulator, tmp_path, "--graceful-timeout", "1")
    outcome: list[object] = []

    def stream() -> None:
        try:
            with httpx.stream(
                "POST",
                base + "/v1/messages",
                headers={"x-api-key": "vk-team-a-secret"},
                json={
                    "model": "claude-haiku",
                    "max_tokens": 16,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
                timeout=120,
            ) as r:
                outcome.append(b"".join(r.iter_bytes()))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=stream, daemon=True)
    client.start()
    try:
        deadline = time.monotonic() + 20
        while bedrock_emulator.open_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bedrock_emulator.open_streams == 1
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)  # well before the first 600 s event
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    client.join(timeout=30)
    assert outcome, "the client thread is still waiting on a stream the gateway should have cut"
    if isinstance(outcome[0], bytes):  # a cut stream: no normal end
        assert b"message_stop" not in outcome[0]
    (record,) = [line for line in log_lines(output) if line["message"] == "request"]
    assert record["status"] == 499 and record["key_id"] == "team-a"


def test_serve_starts_with_the_issue_config_and_answers_readyz(
    served: str, bedrock_emulator: BedrockEmulator
) -> None:
    ready = httpx.get(served + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    r = httpx.post(
        served + "/v1/messages",
        headers={"x-api-key": "vk-team-a-secret"},
        json={"model": "claude-haiku", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    # bedrock-us has an inference-profile ARN for this model: the request went to the ARN.
    assert bedrock_emulator.log.entries[-1].model_id.startswith("arn:aws:bedrock:us-east-1:")
    b = httpx.post(
        served + "/v1/embeddings",
        headers={"authorization": f"Bearer {TEAM_B_KEY}"},
        json={"model": "amazon.titan-embed-text-v2:0", "input": "hello"},
        timeout=10,
    )
    assert b.status_code == 200, b.text
    assert bedrock_emulator.log.entries[-1].auth_kind == "bearer"
    denied = httpx.post(
        served + "/v1/chat/completions",
        headers={"authorization": f"Bearer {TEAM_B_KEY}"},
        json={"model": "amazon.nova-lite-v1:0", "messages": [{"role": "user", "content": "x"}]},
        timeout=10,
    )
    assert denied.status_code == 403


def test_check_prints_the_routing_table_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET", "super-secret-value-123")
    monkeypatch.setenv("BEDROCK_API_KEY", "bedrock-api-key-456")
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(issue_config("http://127.0.0.1:4010")))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "key team-a:" in out and "primary: bedrock-us in us-east-1" in out
    assert "fallback 1: bedrock-eu in eu-west-1" in out
    for secret in ("super-secret-value-123", "bedrock-api-key-456", "vk-team-a-secret"):
        assert secret not in out


def test_check_redacts_the_password_in_an_endpoint_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET", "super-secret-value-123")
    monkeypatch.setenv("BEDROCK_API_KEY", "bedrock-api-key-456")
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(issue_config("http://proxy-user:hunter2-pass@127.0.0.1:4010/bedrock")))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hunter2-pass" not in out
    assert "endpoint=http://proxy-user:***@127.0.0.1:4010/bedrock" in out


@pytest.mark.parametrize(
    "second", [{"key": "vk-same"}, {"key_sha256": hashlib.sha256(b"vk-same").hexdigest()}]
)
def test_check_refuses_two_keys_with_one_secret_naming_the_ids_not_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second: dict[str, str]
) -> None:
    config = {
        "providers": [{"id": "p", "region": "us-east-1", "auth": {"mode": "api_key", "api_key": "x"}}],
        "virtual_keys": [
            {"id": "alpha", "key": "vk-same", "providers": ["p"]},
            {"id": "other", "key": "vk-different", "providers": ["p"]},
            {"id": "beta", "providers": ["p"], **second},
        ],
    }
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    assert main(["check", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert "share one secret" in err and "'alpha', 'beta'" in err
    assert "other" not in err
    assert "vk-same" not in err + captured.out
    assert hashlib.sha256(b"vk-same").hexdigest() not in err + captured.out


def test_check_names_a_missing_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[[providers]]\nid = "p"\nregion = "us-east-1"\n[providers.auth]\nmode = "api_key"\n'
        'api_key = "${SURELY_NOT_SET_ANYWHERE}"\n'
    )
    assert main(["check", "--config", str(path)]) == 1
    assert "SURELY_NOT_SET_ANYWHERE" in capsys.readouterr().err


def test_the_emulator_command_serves_bedrock_on_the_given_port() -> None:
    port = free_port()
    command = [sys.executable, "-m", "bedrock_mw.cli", "emulator", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert health.status_code == 200
        unsigned = httpx.post(
            f"http://127.0.0.1:{port}/model/amazon.nova-lite-v1:0/converse", json={}, timeout=5
        )
        assert unsigned.status_code == 403
        assert unsigned.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException")
    finally:
        process.terminate()
        process.wait(timeout=10)


RECORDS: list[Any] = []


async def record_usage(record: Any) -> None:
    RECORDS.append(record)


@pytest.mark.anyio
async def test_a_usage_hook_named_in_the_config_is_imported_and_called(
    bedrock_emulator: BedrockEmulator,
) -> None:
    from bedrock_mw import create_gateway
    from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

    RECORDS.clear()
    cfg = {**emulator_gateway_config(bedrock_emulator), "usage_hook": f"{__name__}:record_usage"}
    app = create_gateway(cfg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        r = await http.post(
            "/v1/messages",
            headers={"x-api-key": "vk-test"},
            json={
                "model": "amazon.nova-lite-v1:0",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "a b"}],
            },
        )
    assert r.status_code == 200
    assert [(rec.key_id, rec.usage.output_tokens) for rec in RECORDS] == [("test", 3)]
    await app.state.gateway.aclose()


def test_a_usage_hook_that_cannot_be_imported_fails_start_up_naming_it(
    bedrock_emulator: BedrockEmulator,
) -> None:
    from bedrock_mw import ConfigError, create_gateway
    from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

    cfg = {**emulator_gateway_config(bedrock_emulator), "usage_hook": "no_such_module_here:hook"}
    with pytest.raises(ConfigError, match="no_such_module_here:hook"):
        create_gateway(cfg)


def test_check_prints_each_providers_account_or_that_it_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET", "super-secret-value-123")
    monkeypatch.setenv("BEDROCK_API_KEY", "bedrock-api-key-456")
    cfg = issue_config("http://127.0.0.1:4010")
    cfg["providers"][0]["account_id"] = "123456789012"
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(cfg))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"provider {cfg['providers'][0]['id']}: " in out and "account=123456789012" in out
    assert "account=unknown" in out
