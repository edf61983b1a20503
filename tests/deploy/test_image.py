"""deploy/Dockerfile: multi-stage, non-root, `bedrock-mw serve` as entry point; built and probed where
a container engine is running."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_the_image_builds_in_one_stage_and_runs_from_a_clean_one() -> None:
    build, final = stages(DOCKERFILE.read_text())
    assert final[0][1].startswith("python:") and "slim" in final[0][1]
    copies = [args for word, args in final if word == "COPY"]
    assert copies == ["--from=build /opt/bedrock-mw /opt/bedrock-mw"], "only the built virtualenv"
    runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("pip install", "apt-get", "gcc", "build-essential"):
        assert tool not in runs, tool
    assert any("pip uninstall" in args for word, args in build if word == "RUN")


def test_the_image_runs_as_a_numeric_non_root_user_and_serves() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    (user,) = [args for word, args in final if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it
    (entrypoint,) = [json.loads(args) for word, args in final if word == "ENTRYPOINT"]
    assert entrypoint == ["bedrock-mw", "serve"]
    (cmd,) = [json.loads(args) for word, args in final if word == "CMD"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--config") + 1].startswith("/etc/bedrock-mw/")
    assert float(cmd[cmd.index("--graceful-timeout") + 1]) > 0  # SIGTERM cuts and records streams
    assert ("STOPSIGNAL", "SIGTERM") in final


def _engine() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    running = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    return docker if running.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NO_ENGINE = "no running container engine on this machine (docker info fails)"


@pytest.mark.skipif(_engine() is None, reason=NO_ENGINE)
def test_the_built_image_answers_readyz_against_the_emulator(
    bedrock_emulator: BedrockEmulator, tmp_path: Path
) -> None:
    docker = _engine()
    assert docker is not None
    tag = "bedrock-mw:test"
    subprocess.run([docker, "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)], check=True, timeout=900)
    config = emulator_gateway_config(bedrock_emulator)
    config["providers"][0]["endpoint_url"] = bedrock_emulator.endpoint_url
    (tmp_path / "gateway.yaml").write_text(json.dumps(config))  # JSON is YAML
    port = _free_port()
    run = [docker, "run", "--rm", "-d", "--network", "host", "-v", f"{tmp_path}:/etc/bedrock-mw:ro", tag]
    container = subprocess.run(
        [*run, "--config", "/etc/bedrock-mw/gateway.yaml", "--host", "127.0.0.1", "--port", str(port)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the container never became ready"
            time.sleep(0.5)
    finally:
        subprocess.run([docker, "stop", container], check=False, timeout=60)
