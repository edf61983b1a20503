"""A throwaway ``redis-server`` for the limiter tests, and its fixtures (imported by conftest.py).

The tests start the real server on a free loopback port with nothing persisted; they skip, saying
why, only when the ``redis-server`` binary is absent (CI installs it).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

__all__ = ["RedisServer", "redis_prefix", "redis_server", "redis_url"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` subprocess on a free loopback port.

    ``stop()`` simulates an outage; ``freeze()`` (SIGSTOP) a stall: connections still complete in
    the kernel and commands queue in socket buffers, to run when ``thaw()`` (SIGCONT) resumes it.
    """

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server); CI installs it")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def freeze(self) -> None:
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)  # a frozen server would never act on SIGTERM
            self._proc.terminate()
        self._proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a redis-server shared by the whole session (tests isolate by ``redis_prefix``)."""
    server = RedisServer()
    yield server.url
    server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop to simulate an outage."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of its own for each test, so tests never see each other's counters."""
    return f"bedrock-mw-test-{uuid.uuid4().hex[:12]}"
