"""Run the emulator on a real socket: `with`/`async with BedrockEmulator() as emu`, or `run()`.

uvicorn runs in its own thread with its own event loop, so the emulator works the same from sync
code, from inside any test's event loop, and while that loop is blocked in a sync call.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

import anyio.to_thread
import uvicorn

from .app import EmulatorApp
from .credentials import AccessKey, ApiKey
from .faults import FaultBook
from .guardrails import GuardrailBook
from .request_log import RequestLog
from .state import EmulatorSettings, EmulatorState
from .tls import LoopbackCertificate

STARTUP_TIMEOUT_S = 10.0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every two-write response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _config(app: EmulatorApp, **overrides: object) -> uvicorn.Config:
    # log_config=None keeps uvicorn from reconfiguring the host process's logging.
    return uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        **overrides,  # type: ignore[arg-type]
    )


class BedrockEmulator:
    """A Bedrock Runtime emulator listening on `host:port` (port 0 picks a free one).

    With ``certificate`` (``bedrock_mw.testing.tls.make_loopback_certificate``) it speaks HTTPS, as
    Bedrock does; ``keep_alive_s`` is how long it keeps an idle connection open (uvicorn's default, 5 s).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default_region: str = "us-east-1",
        access_keys: list[AccessKey] | None = None,
        api_keys: list[ApiKey] | None = None,
        event_delay_s: float = 0.0,
        state: EmulatorState | None = None,
        certificate: LoopbackCertificate | None = None,
        keep_alive_s: int = 5,
    ) -> None:
        self.host = host
        self.port = port
        self.certificate = certificate
        self.keep_alive_s = keep_alive_s
        self.state = state or EmulatorState(settings=EmulatorSettings(default_region, event_delay_s))
        for key in access_keys or []:
            self.state.keyring.add_access_key(key)
        for api_key in api_keys or []:
            self.state.keyring.add_api_key(api_key)
        self.app = EmulatorApp(self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """Base URL to give a client as `endpoint_url`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.certificate is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def faults(self) -> FaultBook:
        return self.state.faults

    @property
    def guardrails(self) -> GuardrailBook:
        """Guardrails calls may name, and the rule that demands one (see docs/emulator.md)."""
        return self.state.guardrails

    @property
    def log(self) -> RequestLog:
        return self.state.log

    @property
    def open_streams(self) -> int:
        """Streams currently being sent; drops when a client disconnects mid-stream."""
        return self.state.open_streams

    def reset(self) -> None:
        """Clear faults, log, prompt cache and counters."""
        self.state.reset()

    def start(self) -> Self:
        """Bind, start serving in a background thread, and wait until it accepts connections."""
        if self._thread is not None:
            return self
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.state.closing.clear()
        tls: dict[str, object] = {}
        if self.certificate is not None:
            tls = {"ssl_certfile": self.certificate.certfile, "ssl_keyfile": self.certificate.keyfile}
        server = uvicorn.Server(_config(self.app, timeout_keep_alive=self.keep_alive_s, **tls))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="bedrock-emulator", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the Bedrock emulator failed to start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released first."""
        if self._server is None or self._thread is None:
            return
        self.state.closing.set()
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)


def run(host: str = "127.0.0.1", port: int = 8000, *, state: EmulatorState | None = None) -> None:
    """Serve the emulator in the foreground until interrupted (the CLI's entry point)."""
    app = EmulatorApp(state)
    uvicorn.Server(_config(app, host=host, port=port)).run()
