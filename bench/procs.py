"""The processes under test: the emulator, the gateway, LiteLLM's proxy, and phased load generators."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY
from bench.names import CONVERSE_KEY, HOST, HOST_PREFIX, LITELLM_KEY, MODEL, MODEL_ID, VIRTUAL_KEY

__all__ = ["HOST", "LITELLM_KEY", "MODEL", "MODEL_ID", "VIRTUAL_KEY"]

_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


@dataclass
class Server:
    """A server process and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    prefix: str = ""  # where the gateway is mounted ("" when it is the whole app)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        """User plus system CPU seconds used so far by the process and its children."""
        procs = [self.ps, *self.ps.children(recursive=True)]
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def wait_s(self) -> float | None:
        """Seconds the main thread (the event loop) has been runnable but waiting for a CPU.

        From Linux's ``/proc/PID/schedstat``; None where it cannot be read. A window in which this
        grows by a large share of its length measured a starved process, not only its own code.
        """
        try:
            with open(f"/proc/{self.proc.pid}/schedstat") as stats:
                return int(stats.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def rss(self) -> int:
        """Resident set size in bytes (of the process and its children)."""
        total = 0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy())


def start_emulator(workdir: Path) -> Server:
    """The built-in emulator, standalone, no artificial delay."""
    port = free_port()
    proc = _spawn(
        [sys.executable, "-m", "bedrock_mw.cli", "emulator", "--host", HOST, "--port", str(port)],
        workdir / "emulator.log",
    )
    server = Server("emulator", proc, port)
    _wait_http(server.url + "/_emulator/health", proc)
    return server


# Every held stream needs an upstream connection of its own; the default pool is 64.
MAX_UPSTREAM_CONNECTIONS = 2200


def gateway_config(emulator: Server) -> dict[str, Any]:
    """The gateway's config: one provider (the emulator), one key with limits, metrics on.

    Every per-request feature is on, as the targets ask: authentication, the routing plan, per-key
    limits (high enough never to refuse, so they are checked and counted but never bite), the access
    log call, Prometheus metrics and a usage hook (``bench.hooks:tally``).
    """
    return {
        "providers": [
            {
                "id": "emulator",
                "auth": {
                    "mode": "access_keys",
                    "access_key_id": EMULATOR_ACCESS_KEY_ID,
                    "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
                },
                "region": "us-east-1",
                "endpoint_url": emulator.url,
                "max_connections": MAX_UPSTREAM_CONNECTIONS,
            }
        ],
        "virtual_keys": [
            {
                "id": "bench",
                "key": VIRTUAL_KEY,
                "providers": ["emulator"],
                "limits": {
                    "max_concurrent": 100_000,
                    "requests_per_minute": 100_000_000,
                    "tokens_per_minute": 1_000_000_000_000,
                },
            },
            {
                "id": "bench-converse",
                "key": CONVERSE_KEY,
                "providers": ["emulator"],
                "messages_api": "converse",
                "limits": {
                    "max_concurrent": 100_000,
                    "requests_per_minute": 100_000_000,
                    "tokens_per_minute": 1_000_000_000_000,
                },
            },
        ],
        "observability": {"metrics": True},
        "usage_hook": "bench.hooks:tally",
    }


def start_gateway(
    emulator: Server, workdir: Path, *, name: str = "gateway", pythonpath: str | None = None
) -> Server:
    """``bedrock-mw serve``: one worker; uvicorn picks uvloop and httptools when they are installed.

    ``pythonpath`` puts another source tree first (a before/after comparison runs two gateways,
    one per tree, on one emulator).
    """
    config = workdir / f"{name}.json"
    config.write_bytes(orjson.dumps(gateway_config(emulator)))
    port = free_port()
    env = os.environ.copy()
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, str(_ROOT)])
        # ``python -m`` puts the working directory first on sys.path, ahead of PYTHONPATH: run from
        # a checkout, every gateway would import that checkout's bedrock_mw, whatever tree it was given.
        env["PYTHONSAFEPATH"] = "1"
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "bedrock_mw.cli",
            "serve",
            "--config",
            str(config),
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        workdir / f"{name}.log",
        env,
    )
    server = Server(name, proc, port)
    _wait_http(server.url + "/livez", proc)
    return server


def start_relay(emulator: Server, workdir: Path) -> Server:
    """The floor relay (``bench.relay``): the gateway's server, upstream client and signer, nothing else."""
    port = free_port()
    proc = _spawn([sys.executable, "-m", "bench.relay", emulator.url, HOST, str(port)], workdir / "relay.log")
    server = Server("relay", proc, port)
    _wait_http(server.url + "/livez", proc)
    return server


def start_host_app(
    emulator: Server, workdir: Path, *, form: str = "mount", freeze: bool = False, clock: bool = False
) -> Server:
    """The gateway in a FastAPI host app (``bench.host_app``), under uvicorn like ``serve``.

    ``form``: ``mount`` (``app.mount``), ``wrap`` (``GatewayMiddleware`` in front of the app) or, with
    ``clock``, ``bare``; ``freeze``: the host calls ``gc.freeze()`` once built, as ``serve`` does;
    ``clock``: the host's own layers are timed in place (``bench.host_app.LayerClock``).
    """
    name = "-".join(["host", form, *(["frozen"] if freeze else []), *(["clock"] if clock else [])])
    config = workdir / f"{name}.json"
    config.write_bytes(orjson.dumps(gateway_config(emulator)))
    port = free_port()
    command = [sys.executable, "-m", "bench.host_app", str(config), HOST, str(port), "--form", form]
    command += [*(["--freeze"] if freeze else []), *(["--clock"] if clock else [])]
    proc = _spawn(command, workdir / f"{name}.log")
    server = Server(name, proc, port, prefix=HOST_PREFIX)
    _wait_http(server.url + HOST_PREFIX + "/livez", proc)
    return server


@contextlib.contextmanager
def pinned(under_test: list[Server], others: list[Server]) -> Iterator[bool]:
    """Servers under test on one CPU of their own; everything else, this process included (and so
    the load generators it starts), on the rest. Yields whether it could (Linux, two CPUs or more).

    At concurrency 1 a request hops from the load generator to the server, the emulator and back;
    left to the scheduler, which CPU each hop lands on changes from window to window, and with it
    the server's CPU time per request (by a fifth on the bench machine). Pinned, two windows of the
    same server differ far less, so a difference of a few hundredths of a millisecond between two
    servers can be seen. Every affinity is restored on the way out.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        yield False
        return
    before = {s.proc.pid: os.sched_getaffinity(s.proc.pid) for s in [*under_test, *others]}
    before[0] = set(cpus)
    try:
        for server in under_test:
            os.sched_setaffinity(server.proc.pid, {cpus[-1]})
        for pid in [0, *(s.proc.pid for s in others)]:
            os.sched_setaffinity(pid, set(cpus[:-1]))
        yield True
    finally:
        for pid, mask in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, mask)


def litellm_command() -> list[str] | None:
    """How to start LiteLLM's proxy: ``$BENCH_LITELLM``, else ``litellm`` beside this Python or on PATH."""
    given = os.environ.get("BENCH_LITELLM")
    if given:
        return [given]
    beside = Path(sys.executable).with_name("litellm")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("litellm")
    return [found] if found else None


def start_litellm(emulator: Server, workdir: Path) -> Server | None:
    """LiteLLM's proxy on the same emulator, one worker; None when LiteLLM is not installed."""
    command = litellm_command()
    if command is None:
        return None
    config = workdir / "litellm.yaml"
    # LiteLLM's proxy reads YAML; JSON is YAML.
    config.write_bytes(
        orjson.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"bedrock/converse/{MODEL_ID}",
                            "aws_access_key_id": EMULATOR_ACCESS_KEY_ID,
                            "aws_secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
                            "aws_region_name": "us-east-1",
                            "aws_bedrock_runtime_endpoint": emulator.url,
                        },
                    }
                ],
                "litellm_settings": {"telemetry": False, "drop_params": True},
                "general_settings": {"disable_spend_logs": True, "master_key": LITELLM_KEY},
            }
        )
    )
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    proc = _spawn(
        [*command, "--config", str(config), "--host", HOST, "--port", str(port), "--num_workers", "1"],
        workdir / "litellm.log",
        env,
    )
    server = Server("litellm", proc, port)
    try:
        _wait_http(server.url + "/health/liveliness", proc, timeout_s=120)
    except RuntimeError:
        server.stop()
        return None
    return server


def add_fault(emulator: Server, fault: dict[str, Any]) -> None:
    """Add a fault through the emulator's control API."""
    request = urllib.request.Request(
        emulator.url + "/_emulator/faults", data=orjson.dumps(fault), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def clear_faults(emulator: Server) -> None:
    """Remove every fault."""
    request = urllib.request.Request(emulator.url + "/_emulator/faults", method="DELETE")
    with urllib.request.urlopen(request, timeout=5):
        pass


class Phased:
    """A load generator (or floor) process, stepped through its phases by JSON lines."""

    def __init__(self, module: str, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, orjson.dumps(spec).decode()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def expect(self, phase: str) -> dict[str, Any]:
        """Wait for the next phase line; it must be ``phase``."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"load generator exited ({self.proc.returncode}) before {phase!r}")
        message: dict[str, Any] = orjson.loads(line)
        if message["phase"] != phase:
            raise RuntimeError(f"expected phase {phase!r}, got {message!r}")
        return message

    def go(self) -> None:
        """Let the process start its next phase."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self) -> dict[str, Any]:
        """The final result."""
        result: dict[str, Any] = self.expect("done")["result"]
        self.proc.wait()
        return result


@contextlib.contextmanager
def running(*servers: Server | None) -> Iterator[None]:
    """Stop the servers however the block ends."""
    try:
        yield
    finally:
        for server in servers:
            if server is not None:
                server.stop()
