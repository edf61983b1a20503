"""Every gateway route against the raw wire: the same Bedrock call made with no client library at all.

The reference for each route is a raw HTTP/1.1 request from the same load generator straight to the
emulator, authenticated with a Bedrock API key (a bearer token: no signing), so the difference is
everything the gateway adds: its own HTTP server, auth, routing, limits, translation, its upstream
client and signing, transcoding and the usage record. Each row is measured closed-loop at concurrency
1 and 16 with the gateway's CPU seconds sampled over the same window, so the table gives added p50,
the tail (p99 / p50) and gateway CPU milliseconds per request from one run.

A route added to the gateway adds its row here (``ROUTES``), with the raw call it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bedrock_mw.testing import EMULATOR_API_KEY
from bench.names import CONVERSE_KEY, HOST, MODEL, MODEL_ID, VIRTUAL_KEY
from bench.stats import spread

if TYPE_CHECKING:
    from bench.procs import Server

PROMPT = "Say hello"
BASE_MODEL_ID = MODEL_ID.removeprefix("us.")
TITAN_TEXT = "amazon.titan-text-express-v1"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
COHERE_EMBED = "cohere.embed-english-v3"
BATCH = [f"document number {i} about the weather" for i in range(16)]

# Issue 14's bar: the pass-through costs no more than the Anthropic route over the same Converse call.
PASS_THROUGH = "/bedrock converse (pass-through)"
PASS_THROUGH_BAR = "/v1/messages (Converse)"
# The floor relay's rows: what the gateway's parts cost with none of its own work between them.
RELAY = "relay invoke (Claude)"
RELAY_STREAM = "relay invoke stream (Claude)"
RELAY_COHERE = "relay invoke (Cohere, 16 texts)"

ANTHROPIC = {"x-api-key": VIRTUAL_KEY, "anthropic-version": "2023-06-01"}
ANTHROPIC_CONVERSE = {"x-api-key": CONVERSE_KEY, "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": f"Bearer {VIRTUAL_KEY}"}
BEDROCK = {"authorization": f"Bearer {EMULATOR_API_KEY}", "accept": "application/json"}


def _model_path(model_id: str, operation: str) -> str:
    return f"/model/{quote(model_id, safe='')}/{operation}"


def _messages(max_tokens: int = 64) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": max_tokens, "messages": [{"role": "user", "content": PROMPT}]}


def _native(max_tokens: int) -> dict[str, Any]:
    body = {"anthropic_version": "bedrock-2023-05-31", **_messages(max_tokens)}
    del body["model"]
    return body


def _converse() -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": {"maxTokens": 64},
    }


@dataclass(frozen=True)
class Route:
    """One measured row: where it is sent, what it sends, and the raw row it is compared with."""

    name: str
    target: str  # "gateway", "emulator" or "relay" (bench.relay: the floor of the gateway's parts)
    path: str
    body: Callable[[], dict[str, Any]]
    headers: dict[str, str]
    reference: str | None = None
    note: str = ""

    @property
    def streamed(self) -> bool:
        """Whether the answer is a stream (its first byte is then measured against the raw stream's)."""
        return self.path.endswith("-stream") or self.body().get("stream") is True

    def closed_loop(self, port: int, concurrency: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
        """The load generator's spec for this route on ``port``: closed loop at ``concurrency``."""
        return {
            "host": HOST,
            "port": port,
            "path": self.path,
            "body": self.body(),
            "headers": self.headers,
            "mode": "closed",
            "concurrency": concurrency,
            "warmup_s": warmup_s,
            "duration_s": duration_s,
        }


ROUTES: tuple[Route, ...] = (
    Route("raw converse", "emulator", _model_path(MODEL_ID, "converse"), _converse, BEDROCK),
    Route(
        "raw count-tokens",
        "emulator",
        _model_path(BASE_MODEL_ID, "count-tokens"),
        lambda: {"input": {"converse": {"messages": _converse()["messages"]}}},
        BEDROCK,
    ),
    Route(
        "raw invoke (Titan Text)",
        "emulator",
        _model_path(TITAN_TEXT, "invoke"),
        lambda: {"inputText": PROMPT, "textGenerationConfig": {"maxTokenCount": 64}},
        BEDROCK,
    ),
    Route(
        "raw invoke (Cohere, 16 texts)",
        "emulator",
        _model_path(COHERE_EMBED, "invoke"),
        lambda: {"texts": BATCH, "input_type": "search_document"},
        BEDROCK,
    ),
    Route(
        "raw invoke (Claude)",
        "emulator",
        _model_path(MODEL_ID, "invoke"),
        lambda: _native(64),
        BEDROCK,
    ),
    Route(
        "raw invoke stream (Claude)",
        "emulator",
        _model_path(MODEL_ID, "invoke-with-response-stream"),
        lambda: _native(200),
        BEDROCK,
    ),
    Route(
        RELAY,
        "relay",
        _model_path(MODEL_ID, "invoke"),
        lambda: _native(64),
        {},
        "raw invoke (Claude)",
        "bench.relay: the gateway's server, upstream client and SigV4 signer, and nothing else",
    ),
    Route(
        RELAY_COHERE,
        "relay",
        _model_path(COHERE_EMBED, "invoke"),
        lambda: {"texts": BATCH, "input_type": "search_document"},
        {},
        "raw invoke (Cohere, 16 texts)",
        "the same for 16 embeddings: what moving their 324 KB answer through the parts costs",
    ),
    Route(
        RELAY_STREAM,
        "relay",
        _model_path(MODEL_ID, "invoke-with-response-stream"),
        lambda: _native(200),
        {},
        "raw invoke stream (Claude)",
        "the same, the event stream relayed a socket read at a time",
    ),
    Route("/v1/messages", "gateway", "/v1/messages", _messages, ANTHROPIC, "raw invoke (Claude)"),
    Route(
        "/v1/messages (stream)",
        "gateway",
        "/v1/messages",
        lambda: {**_messages(200), "stream": True},
        ANTHROPIC,
        "raw invoke stream (Claude)",
    ),
    Route(
        "/v1/messages (Converse)", "gateway", "/v1/messages", _messages, ANTHROPIC_CONVERSE, "raw converse"
    ),
    Route(
        "raw converse stream",
        "emulator",
        _model_path(MODEL_ID, "converse-stream"),
        lambda: {**_converse(), "inferenceConfig": {"maxTokens": 200}},
        BEDROCK,
    ),
    Route(
        "/v1/messages (Converse, stream)",
        "gateway",
        "/v1/messages",
        lambda: {**_messages(200), "stream": True},
        ANTHROPIC_CONVERSE,
        "raw converse stream",
    ),
    Route(
        PASS_THROUGH,
        "gateway",
        "/bedrock" + _model_path(MODEL_ID, "converse"),
        _converse,
        {"authorization": f"Bearer {VIRTUAL_KEY}", "accept": "application/json"},
        "raw converse",
        "Bedrock's own API, the body passed through",
    ),
    Route(
        "/v1/messages/count_tokens",
        "gateway",
        "/v1/messages/count_tokens",
        lambda: {k: v for k, v in _messages().items() if k != "max_tokens"},
        ANTHROPIC,
        "raw count-tokens",
    ),
    Route(
        "/v1/chat/completions (Claude)", "gateway", "/v1/chat/completions", _messages, OPENAI, "raw converse"
    ),
    Route(
        "/v1/responses (Claude)",
        "gateway",
        "/v1/responses",
        lambda: {"model": MODEL, "input": PROMPT, "max_output_tokens": 64},
        OPENAI,
        "raw converse",
        "store: true (the API's default): each answer is also kept in the in-memory response store",
    ),
    Route(
        "/v1/chat/completions (Titan Text)",
        "gateway",
        "/v1/chat/completions",
        lambda: {**_messages(), "model": TITAN_TEXT},
        OPENAI,
        "raw invoke (Titan Text)",
    ),
    Route(
        "/v1/embeddings (Cohere, 16)",
        "gateway",
        "/v1/embeddings",
        lambda: {"model": COHERE_EMBED, "input": BATCH},
        OPENAI,
        "raw invoke (Cohere, 16 texts)",
    ),
    Route(
        "/v1/embeddings (Titan, 16)",
        "gateway",
        "/v1/embeddings",
        lambda: {"model": TITAN_EMBED, "input": BATCH},
        OPENAI,
        None,
        "Titan embeds one text per call: 16 InvokeModel calls, 8 at a time",
    ),
)


def measure_routes(
    concurrency: tuple[int, ...],
    reps: int,
    warmup_s: float,
    duration_s: float,
    emulator: Server,
    gateway: Server,
    measure: Callable[..., dict[str, Any]],
    log: Callable[[str], None],
    routes: tuple[Route, ...] = ROUTES,
    relay: Server | None = None,
) -> dict[str, Any]:
    """Closed-loop load per route and concurrency, repetitions interleaved; summary per route.

    The ``relay …`` rows run only when the floor relay (``bench.relay``) is given.
    """
    servers = {"gateway": gateway, "emulator": emulator}
    if relay is not None:
        servers["relay"] = relay
    else:
        routes = tuple(r for r in routes if r.target != "relay")
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {r.name: {c: [] for c in concurrency} for r in routes}
    for rep in range(reps):
        for route in routes:
            server = servers[route.target]
            # CPU is the gateway's (or, on its rows, the floor relay's): the process between the two.
            watched = server if route.target in ("gateway", "relay") else None
            for c in concurrency:
                spec = route.closed_loop(server.port, c, warmup_s, duration_s)
                result = measure("bench.loadgen", spec, watched=watched or gateway)
                result["gateway_cpu_ms_per_request"] = (
                    1000 * result["server_cpu_s"] / result["requests"]
                    if watched is not None and result["requests"]
                    else None
                )
                wait = result.get("server_wait_s")
                result["gateway_wait_share"] = (
                    wait / duration_s if watched is not None and wait is not None else None
                )
                runs[route.name][c].append(result)
                log(
                    f"  rep {rep + 1} {route.name:36} c={c:<3} {result['rps']:7.0f} req/s "
                    f"p50 {result['p50_ms']:6.2f} p99 {result['p99_ms']:6.2f} ms errors {result['errors']}"
                )
    return summarise(runs, routes, concurrency)


def summarise(
    runs: dict[str, dict[int, list[dict[str, Any]]]], routes: tuple[Route, ...], concurrency: tuple[int, ...]
) -> dict[str, Any]:
    """Per route and concurrency: spreads of req/s, p50, p99, tail ratio, CPU, and added p50 vs raw."""
    out: dict[str, Any] = {}
    for route in routes:
        by_c: dict[str, Any] = {}
        for c in concurrency:
            rs = runs[route.name][c]
            cell: dict[str, Any] = {
                "rps": spread([r["rps"] for r in rs]),
                "p50_ms": spread([r["p50_ms"] for r in rs]),
                "p99_ms": spread([r["p99_ms"] for r in rs]),
                "p99_over_p50": spread([r["p99_ms"] / r["p50_ms"] for r in rs if r["p50_ms"]]),
                "errors": sum(r["errors"] for r in rs),
            }
            cpu = [r["gateway_cpu_ms_per_request"] for r in rs if r["gateway_cpu_ms_per_request"] is not None]
            if cpu:
                cell["gateway_cpu_ms_per_request"] = spread(cpu)
            waits = [r["gateway_wait_share"] for r in rs if r.get("gateway_wait_share") is not None]
            if waits:
                cell["gateway_wait_share"] = spread(waits)
            if route.reference is not None and route.reference in runs:
                ref = runs[route.reference][c]
                cell["added_p50_ms"] = spread(
                    [g["p50_ms"] - f["p50_ms"] for g, f in zip(rs, ref, strict=True)]
                )
                if route.streamed and all("ttfb_p50_ms" in r for r in (*rs, *ref)):
                    cell["added_ttfb_p50_ms"] = spread(
                        [g["ttfb_p50_ms"] - f["ttfb_p50_ms"] for g, f in zip(rs, ref, strict=True)]
                    )
            by_c[str(c)] = cell
        out[route.name] = {
            "target": route.target,
            "reference": route.reference,
            "note": route.note,
            "streamed": route.streamed,
            **by_c,
        }
    return out


def render(results: dict[str, Any], cell: Callable[..., str]) -> list[str]:
    """The every-route table for docs/benchmarks.md."""
    lines = [
        "### Every route against the raw wire",
        "",
        "`raw …` rows are the same Bedrock call sent by the load generator straight to the emulator "
        "(a bearer token, no client library): the floor. *added p50* is the route's p50 minus its raw "
        "row's in the same repetition (the whole answer, streamed ones included); *added first byte* is "
        "the same for the time to the first body byte of a streamed answer; *gateway CPU* is the gateway "
        "process's CPU time over the measured window divided by the requests it answered. `relay …` rows "
        "are `bench.relay`: the gateway's server (uvicorn as `serve` runs it), upstream client (aiohttp) "
        "and SigV4 signer forwarding the raw call with nothing else between them; their CPU column is "
        "the relay process's, the floor under any gateway made of these parts.",
        "",
        "| route | c | requests/s | p50 ms | p99 ms | p99/p50 | added p50 ms | added first byte p50 ms "
        "| gateway CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        first_c = next(k for k in row if k.isdigit())
        for c, data in row.items():
            if not c.isdigit():
                continue
            added = cell(data["added_p50_ms"], "{:+.2f}") if "added_p50_ms" in data else "—"
            first = cell(data["added_ttfb_p50_ms"], "{:+.2f}") if "added_ttfb_p50_ms" in data else "—"
            cpu = cell(data["gateway_cpu_ms_per_request"]) if "gateway_cpu_ms_per_request" in data else "—"
            label = f"{name} ({row['note']})" if row["note"] and c == first_c else name
            lines.append(
                f"| {label} | {c} | {cell(data['rps'], '{:.0f}')} | {cell(data['p50_ms'])} | "
                f"{cell(data['p99_ms'])} | {cell(data['p99_over_p50'], '{:.1f}')} | {added} | {first} | "
                f"{cpu} |"
            )
    lines.append("")
    lines += pass_through_verdict(results)
    lines += floor_verdict(results)
    return lines


def _cpu_beside(results: dict[str, Any], row: str, other: str) -> list[tuple[str, float, float]]:
    """Per concurrency both rows ran at: (c, ``row``'s CPU ms per request, ``other``'s), medians."""
    mine, theirs = results.get(row), results.get(other)
    if mine is None or theirs is None:
        return []
    pairs = []
    for c, data in mine.items():
        if not c.isdigit() or c not in theirs:
            continue
        a = data.get("gateway_cpu_ms_per_request", {}).get("median")
        b = theirs[c].get("gateway_cpu_ms_per_request", {}).get("median")
        if a is not None and b is not None:
            pairs.append((c, a, b))
    return pairs


def floor_verdict(results: dict[str, Any]) -> list[str]:
    """One line per concurrency: /v1/messages' CPU per request beside the floor relay's on the same call.

    Both forward the same InvokeModel call through the same server, client and signer; the
    difference is the gateway's own work (authentication, routing, limits, the request's scope,
    usage record and metrics).
    """
    lines = [
        f"* Floor at c={c}: the relay used {floor:.3f} CPU ms/request and /v1/messages {mine:.3f} on the "
        f"same InvokeModel call: the gateway's own work is {mine - floor:.3f} ms "
        f"({100 * (mine - floor) / mine:.0f} %) of it."
        for c, floor, mine in _cpu_beside(results, RELAY, "/v1/messages")
    ]
    return [*lines, ""] if lines else []


def pass_through_verdict(results: dict[str, Any]) -> list[str]:
    """One line per concurrency: the pass-through's gateway CPU per request beside /v1/messages'.

    The cost compared is the gateway's own CPU per request (what the gateway adds, unlike p50, which
    on a shared machine moves with its neighbours); both p50s are shown beside it.
    """
    lines = []
    for c, mine_cpu, bar_cpu in _cpu_beside(results, PASS_THROUGH, PASS_THROUGH_BAR):
        verdict = "no more than" if mine_cpu <= bar_cpu else "MORE than"
        mine_p50, bar_p50 = (results[n][c]["p50_ms"]["median"] for n in (PASS_THROUGH, PASS_THROUGH_BAR))
        lines.append(
            f"Pass-through Converse at c={c}: {mine_cpu:.3f} gateway CPU ms/request, {verdict} "
            f"/v1/messages' {bar_cpu:.3f} in the same run (p50 {mine_p50:.2f} ms vs {bar_p50:.2f} ms)."
        )
    return [*lines, ""] if lines else []
