"""The gateway inside host apps: FastAPI, Starlette, GatewayMiddleware (direct and listed), Django.

Each host is called in-process with the official SDKs (through the ASGI transport of the HTTP
library they are built on) and with plain httpx; host routes keep working, the host's own
lifespan still runs, and the gateway's upstream clients close when the host shuts down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import fastapi
import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from bedrock_mw import GatewayMiddleware, create_gateway, gateway_lifespan
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.sdk import anthropic_client, asgi_http_client, openai_client, sdk_http_module

pytestmark = pytest.mark.anyio

BASE = "http://host.test"
ANTHROPIC_MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "bedrock/us.amazon.nova-lite-v1:0"
HOSTS = ["fastapi", "starlette", "middleware", "middleware_list", "django"]


@dataclass
class Host:
    """A host app with the gateway under /llm, and what to check it by."""

    name: str
    app: Any
    gateway: Starlette
    hello_path: str
    hello_body: dict[str, Any]
    flags: dict[str, bool] = field(default_factory=lambda: {"started": False, "stopped": False})


def open_upstream_clients(gateway: Starlette) -> int:
    # Peeks at the gateway's client pool: the public API has no "are my clients closed?" question.
    return len(gateway.state.gateway.dispatcher.pool)


def _host_lifespan(flags: dict[str, bool], *gateways: Starlette) -> Callable[[Any], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        flags["started"] = True
        try:
            # Mounted sub-apps get no lifespan of their own: the host closes the gateway's clients.
            async with gateway_lifespan(*gateways):
                yield
        finally:
            flags["stopped"] = True

    return lifespan


async def _hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": "hello from the host"})


def build_host(name: str, config: dict[str, Any]) -> Host:
    gateway = create_gateway(config)
    host = Host(name, None, gateway, "/hello", {"message": "hello from the host"})
    if name == "fastapi":
        app = fastapi.FastAPI(lifespan=_host_lifespan(host.flags, gateway))

        @app.get("/hello")
        async def hello() -> dict[str, str]:
            return {"message": "hello from the host"}

        app.mount("/llm", gateway)
    elif name == "starlette":
        app = Starlette(
            routes=[Route("/hello", _hello), Mount("/llm", app=gateway)],
            lifespan=_host_lifespan(host.flags, gateway),
        )
    elif name == "middleware":
        # GatewayMiddleware joins the host's lifespan itself: the host does not name the gateway.
        inner = Starlette(routes=[Route("/hello", _hello)], lifespan=_host_lifespan(host.flags))
        app = GatewayMiddleware(inner, gateway=gateway, prefix="/llm")
    elif name == "middleware_list":
        app = Starlette(
            routes=[Route("/hello", _hello)],
            middleware=[Middleware(GatewayMiddleware, gateway=gateway, prefix="/llm")],
            lifespan=_host_lifespan(host.flags),
        )
    else:
        raise ValueError(name)
    host.app = app
    return host


@pytest.fixture(params=HOSTS)
def host_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "django":
        # Sync fixture: Django's sync ORM (migrate, seeding) must run outside the event loop.
        request.getfixturevalue("django_keys")
    return str(request.param)


@pytest.fixture
async def host(host_kind: str, bedrock_emulator_config: dict[str, Any]) -> AsyncIterator[Host]:
    if host_kind == "django":
        from example_app.django_site import asgi

        application = asgi.application
        built = Host(
            "django", application, application.gateway, "/django/hello", {"message": "hello from Django"}
        )
    else:
        built = build_host(host_kind, bedrock_emulator_config)
    yield built
    # Each test has its own event loop: never carry pooled upstream clients over to the next one.
    await built.gateway.state.gateway.aclose()


@pytest.fixture
def sdk_clients(host: Host) -> Iterator[tuple[anthropic.AsyncAnthropic, openai.AsyncOpenAI]]:
    yield (
        anthropic_client(host.app, f"{BASE}/llm", api_key="vk-test", max_retries=0),
        openai_client(host.app, f"{BASE}/llm/v1", api_key="vk-test", max_retries=0),
    )


# -- the SDKs, in-process ------------------------------------------------------------------------------


async def test_anthropic_sdk(host: Host, sdk_clients: Any, bedrock_emulator: BedrockEmulator) -> None:
    client, _ = sdk_clients
    async with client:
        message = await client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello from the SDK"}]
        )
        assert message.type == "message" and message.role == "assistant"
        assert message.content[0].type == "text" and message.content[0].text
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

        async with client.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "Stream to me"}]
        ) as stream:
            text = await stream.get_final_text()
            final = await stream.get_final_message()
        assert text and final.stop_reason == "end_turn"
        assert final.usage.output_tokens > 0
    operations = [entry.operation for entry in bedrock_emulator.log.entries]
    assert len(operations) == 2 and any("stream" in op.lower() for op in operations)


async def test_openai_sdk(host: Host, sdk_clients: Any) -> None:
    _, client = sdk_clients
    async with client:
        completion = await client.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "Hello from the SDK"}]
        )
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content
        assert completion.usage is not None and completion.usage.prompt_tokens > 0

        stream = await client.chat.completions.create(
            model=OPENAI_MODEL,
            messages=[{"role": "user", "content": "Stream to me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        usage = None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                usage = chunk.usage
        assert "".join(pieces)
        assert usage is not None and usage.completion_tokens > 0


async def test_host_routes_still_served(host: Host) -> None:
    async with asgi_http_client(host.app, BASE) as http:
        hello = await http.get(host.hello_path)
        assert hello.status_code == 200 and hello.json() == host.hello_body
        assert (await http.get("/llm/livez")).status_code == 200
        # Unknown paths under the prefix are the gateway's (its error shape), not the host's.
        missing = await http.post("/llm/v1/nope", headers={"x-api-key": "vk-test"}, json={})
        assert missing.status_code == 404
        assert "error" in missing.json()


async def test_unknown_key_is_rejected_in_each_dialect(host: Host, sdk_clients: Any) -> None:
    client, oai = sdk_clients
    async with client, oai:
        with pytest.raises(anthropic.AuthenticationError):
            await client.with_options(api_key="vk-wrong").messages.create(
                model=ANTHROPIC_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.AuthenticationError):
            await oai.with_options(api_key="vk-wrong").chat.completions.create(
                model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}]
            )


# -- plain httpx, and which HTTP library the SDKs need ------------------------------------------------


async def test_plain_httpx_through_the_host(host: Host) -> None:
    transport = httpx.ASGITransport(app=host.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        response = await http.post(
            "/llm/v1/chat/completions",
            headers={"authorization": "Bearer vk-test"},
            json={"model": OPENAI_MODEL, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"


def test_sdk_http_client_matches_the_sdk() -> None:
    for sdk in ("anthropic", "openai"):
        module = sdk_http_module(sdk)  # type: ignore[arg-type]
        assert module.__name__ in ("httpx", "httpx2")
        client = asgi_http_client(Starlette(), BASE, sdk=sdk)  # type: ignore[arg-type]
        assert type(client).__module__.split(".")[0] == module.__name__
    if sdk_http_module("anthropic").__name__ == "httpx2":
        # SDKs built on httpx2 refuse an httpx client outright: hence asgi_http_client.
        with pytest.raises(TypeError, match="httpx2"):
            anthropic.AsyncAnthropic(
                api_key="x", http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette()))
            )


# -- lifespans ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host_kind", [h for h in HOSTS if h != "django"], indirect=True)
async def test_host_lifespan_runs_and_gateway_clients_close(host: Host, lifespan: Any) -> None:
    async with lifespan(host.app) as outcome:
        assert outcome.startup == "lifespan.startup.complete"
        assert host.flags == {"started": True, "stopped": False}
        async with openai_client(host.app, f"{BASE}/llm/v1", max_retries=0) as client:
            await client.chat.completions.create(
                model=OPENAI_MODEL, messages=[{"role": "user", "content": "Hi"}]
            )
        assert open_upstream_clients(host.gateway) == 1
    assert outcome.shutdown == "lifespan.shutdown.complete"
    assert host.flags == {"started": True, "stopped": True}
    assert open_upstream_clients(host.gateway) == 0


@pytest.mark.parametrize("host_kind", ["django"], indirect=True)
async def test_django_host_lifespan_closes_gateway_clients(host: Host, lifespan: Any) -> None:
    # Django's ASGI handler does not speak lifespan. Under uvicorn (lifespan="auto") that is
    # tolerated, but then nothing would close the gateway's clients at shutdown unless
    # GatewayMiddleware completes the lifespan itself for such an app.
    async with lifespan(host.app) as outcome:
        async with openai_client(host.app, f"{BASE}/llm/v1", max_retries=0) as client:
            await client.chat.completions.create(
                model=OPENAI_MODEL, messages=[{"role": "user", "content": "Hi"}]
            )
        assert open_upstream_clients(host.gateway) == 1
    assert outcome.startup == "lifespan.startup.complete", f"lifespan failed: {outcome.error!r}"
    assert outcome.shutdown == "lifespan.shutdown.complete"
    assert open_upstream_clients(host.gateway) == 0


@pytest.mark.parametrize("fails_at", ["lifespan.startup", "lifespan.shutdown"])
async def test_a_host_lifespan_that_raises_is_not_swallowed_by_the_middleware(
    bedrock_emulator_config: dict[str, Any], lifespan: Any, fails_at: str
) -> None:
    # A raw ASGI host that speaks lifespan and fails without answering: its error must reach the
    # server, not be taken for Django's refusal of the scope and turned into a successful startup.
    async def host(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != fails_at:
            await send({"type": "lifespan.startup.complete"})
        raise RuntimeError("host database is down")

    gateway = create_gateway(bedrock_emulator_config)
    try:
        async with lifespan(GatewayMiddleware(host, gateway=gateway)) as outcome:
            pass
    finally:
        await gateway.state.gateway.aclose()
    assert isinstance(outcome.error, RuntimeError) and str(outcome.error) == "host database is down"
    expected = "unsupported" if fails_at == "lifespan.startup" else "lifespan.startup.complete"
    assert outcome.startup == expected


async def test_gateway_works_with_no_lifespan_at_all(bedrock_emulator_config: dict[str, Any]) -> None:
    # httpx's and httpx2's ASGI transports send no lifespan events: clients are created lazily.
    gateway = create_gateway(bedrock_emulator_config)
    try:
        async with anthropic_client(gateway, f"{BASE}", max_retries=0) as client:
            message = await client.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=32, messages=[{"role": "user", "content": "No lifespan"}]
            )
        assert message.content[0].text
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url=BASE) as http:
            models = await http.get("/v1/models", headers={"authorization": "Bearer vk-test"})
            assert models.status_code == 200, models.text
            assert (await http.get("/readyz")).status_code == 200
        assert open_upstream_clients(gateway) >= 1
    finally:
        await gateway.state.gateway.aclose()
    assert open_upstream_clients(gateway) == 0


async def test_prefix_boundary_belongs_to_the_host(bedrock_emulator_config: dict[str, Any]) -> None:
    async def llmx(request: Request) -> JSONResponse:
        return JSONResponse({"host": True})

    gateway = create_gateway(bedrock_emulator_config)
    app = GatewayMiddleware(Starlette(routes=[Route("/llmx", llmx)]), gateway=gateway, prefix="/llm")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        assert (await http.get("/llmx")).json() == {"host": True}
        assert (await http.get("/llm/livez")).status_code == 200
    await gateway.state.gateway.aclose()
