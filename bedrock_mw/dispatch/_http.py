"""The one HTTP seam under the lean client: a signed POST out, Bedrock's answer back.

The lean client (``_runtime``) builds the path, the body and every header (signature included);
what it needs from an HTTP client is small and fixed, and written here once as two Protocols:
:class:`HttpClient` (``fetch`` a whole answer, ``open`` one to read as it arrives, ``aclose``) and
:class:`HttpAnswer` (status, lower-cased headers, ``read``, ``chunks``, a synchronous ``close`` that
drops the connection at once). Two implementations: aiohttp's (``_aiohttp``, the default) and
pyreqwest's (``_reqwest``, Rust's reqwest/hyper, the ``fast`` extra), chosen per provider by
``http_client`` (``auto``: pyreqwest when importable, else aiohttp).

pyreqwest is not the default, for one difference this seam cannot hide: in pyreqwest 0.15.1 a
cancelled request (the caller left, a deadline passed) is not aborted. Its Rust task runs on until
Bedrock answers (``RuntimeHandle::spawn_handled`` stops waiting for the task's ``JoinHandle`` but
never aborts it), so until the answer's headers arrive the call keeps its connection and pool slot,
and Bedrock keeps generating. Once headers arrived, closing the answer stops the read at once.

Both behave the same on the wire: the path sent exactly as signed (never re-quoted or unquoted),
no automatic decompression and no ``Accept-Encoding``, no redirects followed, no proxy taken from
the environment, TLS verified against the system's roots and the provider's ``ca_bundle`` if it
names one (:class:`CaBundle`), a connect timeout and nothing else (the dispatcher owns every other
deadline), at most ``max_connections`` requests in flight with idle connections kept alive for
:data:`KEEPALIVE_S`. Their exceptions are listed here for ``_errors``, the one place that maps them.

A pooled connection the server closed while it was idle is dropped by both before reuse once the
close has arrived. If the server closes it just as a request goes out, the request fails before any
answer: aiohttp's client sends such a request once more (``_aiohttp``), never any other; pyreqwest's
resends it only when hyper saw the close before writing the request (it tells neither whether a
connection was pooled nor whether any answer arrived), so there the failure reaches the dispatcher.
"""

from __future__ import annotations

import importlib.util
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp

HttpClientName = Literal["auto", "aiohttp", "pyreqwest"]
# How long an idle connection stays in the pool: below the keep-alive of the servers in front of
# Bedrock, so that the server rarely closes one first (aiobotocore's default for AWS endpoints, whose
# keep-alive it found to be about 20 s; Bedrock documents none).
KEEPALIVE_S = 12.0


@dataclass(frozen=True, slots=True)
class CaBundle:
    """CA certificates a provider trusts beyond the system's roots (its ``ca_bundle``), as each client
    takes them: one PEM certificate at a time (pyreqwest), or an SSL context (aiohttp)."""

    path: str
    certificates: tuple[bytes, ...]
    ssl_context: ssl.SSLContext


class CaBundleError(OSError):
    """A ``ca_bundle`` file that holds no PEM certificate (an OSError, as one that cannot be read)."""


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


def load_ca_bundle(path: str) -> CaBundle:
    """Read a PEM bundle and build its SSL context: blocking (the system's roots are read too)."""
    with open(path, "rb") as file:
        certificates = tuple(_PEM_CERTIFICATE.findall(file.read()))
    if not certificates:
        raise CaBundleError(f"ca_bundle {path} holds no PEM certificate")
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=b"\n".join(certificates).decode("ascii"))
    return CaBundle(path, certificates, context)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What both clients are built from (a provider's pool size, connect timeout and extra CAs)."""

    max_connections: int
    connect_timeout_s: float
    ca_bundle: CaBundle | None = None


class HttpAnswer(Protocol):
    """An answer whose status and headers arrived; its body is read as a whole or as it arrives."""

    status: int
    headers: Mapping[str, str]  # names lower-cased

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body in whatever pieces the socket gives."""
        ...

    def close(self) -> None:
        """Drop the connection now (it is not reused); harmless once the body was read."""
        ...


class HttpClient(Protocol):
    """One connection pool to one endpoint's host."""

    name: str

    async def fetch(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """POST and read the whole answer: status, lower-cased headers, body."""
        ...

    async def open(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpAnswer:
        """POST and return once the status and headers arrived; the caller closes the answer."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...


class BodyEndedEarly(ConnectionError):
    """The answer's body ended inside an event-stream frame (the connection was cut)."""


def pyreqwest_available() -> bool:
    """Whether the ``fast`` extra's client can be imported."""
    return importlib.util.find_spec("pyreqwest") is not None


def resolve(name: HttpClientName) -> Literal["aiohttp", "pyreqwest"]:
    """The client ``name`` stands for: ``auto`` is pyreqwest when importable, else aiohttp."""
    if name == "auto":
        return "pyreqwest" if pyreqwest_available() else "aiohttp"
    return name


def http_client(name: HttpClientName, settings: HttpSettings) -> HttpClient:
    """A new client (its own pool) of the kind ``name`` stands for."""
    if resolve(name) == "pyreqwest":
        from ._reqwest import ReqwestClient

        return ReqwestClient(settings)
    from ._aiohttp import AiohttpClient

    return AiohttpClient(settings)


def describe(exc: BaseException) -> str:
    """A client exception in one line: its class and message, and pyreqwest's chain of causes.

    Both clients' messages name the URL, host and port at most; headers (where credentials are)
    are never in them.
    """
    text = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    details = getattr(exc, "details", None)
    causes = details.get("causes") if isinstance(details, dict) else None
    if causes:
        text += " (" + "; ".join(str(cause.get("message", "")) for cause in causes) + ")"
    return text[:500]


def _failures() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    connect: tuple[type[BaseException], ...] = (aiohttp.ConnectionTimeoutError,)
    transport: tuple[type[BaseException], ...] = (aiohttp.ClientError,)
    try:
        from pyreqwest.exceptions import ConnectTimeoutError, PyreqwestError
    except ImportError:
        return connect, transport
    return (*connect, ConnectTimeoutError), (*transport, PyreqwestError)


# The clients' exceptions, for ``_errors``: a connect timeout is a connection failure (both clients'
# are also TimeoutErrors, which otherwise mean a slow answer); the rest are connection failures
# unless they are TimeoutErrors.
CONNECT_TIMEOUTS, CLIENT_ERRORS = _failures()
