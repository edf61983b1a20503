"""The load generator: a raw asyncio HTTP/1.1 client over keep-alive sockets, run in its own process.

It is deliberately small (no HTTP library, one socket per concurrent caller, uvloop when installed) so
that on a two-core machine it takes as little CPU from the server under test as it can.

Run as ``python -m bench.loadgen SPEC_JSON``. It talks to the orchestrator in JSON lines on stdout
and waits for a line on stdin at each phase boundary, so the orchestrator can sample the server's
CPU time and memory at exactly the edges of the measured window:

* ``closed``: ``concurrency`` callers loop requests; warm-up, then ``{"phase": "warm"}``; after the
  go line, a window of ``duration_s`` seconds; then ``{"phase": "done", "result": ...}``.
* ``stream``: ``concurrency`` callers run ``count`` streamed requests in all (after ``warmup_count``),
  recording time to first body byte and SSE events received.
* ``hold``: open ``count`` streams, read each one's first event, keep draining them, report
  ``{"phase": "holding"}``, and close them all after the go line.
* ``mix``: ``concurrency`` callers cycle through ``requests`` (each a path, body and headers; streamed
  ones are read to the end) for ``duration_s`` after the warm-up, counting answers by status.
* ``rotate``: one caller sends the same request to each of ``targets`` (each a port and a path) in
  turn, every round in a fresh random order, so each server has at most one request in flight and
  all of them are measured over the same window, request by request; latency per target.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import sys
import time
from typing import Any

import orjson

from bench.stats import percentile


def _request_bytes(spec: dict[str, Any], host: str | None = None, port: int | None = None) -> bytes:
    body = orjson.dumps(spec["body"])
    lines = [
        f"POST {spec['path']} HTTP/1.1",
        f"host: {host or spec['host']}:{port or spec['port']}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in spec.get("headers", {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def head(self, raw: bytes) -> tuple[int, dict[bytes, bytes]]:
        """Send a request and read the status line and headers."""
        reader, writer = await self._connect()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers: dict[bytes, bytes] = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def body_chunks(self, headers: dict[bytes, bytes]) -> Any:
        """Yield the body: one item for a content-length body, one per chunk for a chunked one."""
        reader = self.reader
        assert reader is not None
        if b"content-length" in headers:
            yield await reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return
                yield (await reader.readexactly(size + 2))[:-2]
        else:
            yield await reader.read()
            self.close()
            return
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()


class Window:
    """The measured window. Callers loop while it has not closed (:meth:`running`) and count only
    the requests that started and ended inside it (:meth:`holds`); :meth:`run` lets them warm up,
    tells the orchestrator, waits for its go-ahead, opens the window for ``duration_s`` and waits
    for every caller to finish the request it has in flight when the window closes."""

    def __init__(self) -> None:
        self.start = self.end = float("inf")

    def running(self) -> bool:
        return time.perf_counter() < self.end

    def holds(self, started: float, ended: float) -> bool:
        return self.start <= started and ended <= self.end

    async def run(self, spec: dict[str, Any], callers: list[Any]) -> None:
        tasks = [asyncio.ensure_future(c) for c in callers]
        await asyncio.sleep(spec["warmup_s"])
        await _phase("warm")
        self.start = time.perf_counter()
        self.end = self.start + spec["duration_s"]
        await asyncio.gather(*tasks)


async def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    raw = _request_bytes(spec)
    conns = [Connection(spec["host"], spec["port"]) for _ in range(spec["concurrency"])]
    window = Window()
    latencies: list[float] = []
    first_bytes: list[float] = []
    timeline: list[tuple[float, float, float]] = []  # (start, first byte, end) per measured request
    errors = 0

    async def caller(conn: Connection) -> None:
        nonlocal errors
        while window.running():
            started = time.perf_counter()
            status, headers = await conn.head(raw)
            first = 0.0
            async for _ in conn.body_chunks(headers):
                first = first or time.perf_counter()
            ended = time.perf_counter()
            if window.holds(started, ended):
                latencies.append(ended - started)
                first_bytes.append((first or ended) - started)
                timeline.append((started, first or ended, ended))
                if status != 200:
                    errors += 1

    await window.run(spec, [caller(c) for c in conns])
    for c in conns:
        c.close()
    result = _latency_result(latencies, spec["duration_s"], errors)
    # Time to the first body byte: for a streamed answer, when the caller sees its first event.
    result["ttfb_p50_ms"] = percentile(first_bytes, 50) * 1000
    result["ttfb_p99_ms"] = percentile(first_bytes, 99) * 1000
    if spec.get("timeline"):
        _write_timeline(spec["timeline"], window.start, timeline)
    return result


def _write_timeline(path: str, origin: float, timeline: list[tuple[float, float, float]]) -> None:
    """Each measured request's start, first body byte and end, in ms from the window's start.

    ``origin_ms`` is on the machine's monotonic clock, which other processes read too; the file is
    JSON (too large for the line the orchestrator reads), written once every caller has stopped.
    """
    rows = [[round((t - origin) * 1000, 3) for t in row] for row in timeline]
    with open(path, "wb") as out:
        out.write(orjson.dumps({"origin_ms": origin * 1000, "rows": rows}))


def _latency_result(latencies: list[float], seconds: float, errors: int) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def _rotate(spec: dict[str, Any]) -> dict[str, Any]:
    targets = spec["targets"]
    raws = [_request_bytes({**spec, **t}) for t in targets]
    conns = [Connection(spec["host"], t["port"]) for t in targets]
    latencies: list[list[float]] = [[] for _ in targets]
    errors = [0] * len(targets)
    window = Window()
    order = list(range(len(targets)))
    shuffle = random.Random(spec.get("seed", 18)).shuffle

    async def caller() -> None:
        while window.running():
            shuffle(order)  # no server always follows the same one
            for i in order:
                started = time.perf_counter()
                status, headers = await conns[i].head(raws[i])
                async for _ in conns[i].body_chunks(headers):
                    pass
                ended = time.perf_counter()
                if window.holds(started, ended):
                    latencies[i].append(ended - started)
                    errors[i] += status != 200

    await window.run(spec, [caller()])
    for conn in conns:
        conn.close()
    per_target = zip(latencies, errors, strict=True)
    return {"targets": [_latency_result(lat, spec["duration_s"], e) for lat, e in per_target]}


async def _mix(spec: dict[str, Any]) -> dict[str, Any]:
    raws = [_request_bytes(r, spec["host"], spec["port"]) for r in spec["requests"]]
    conns = [Connection(spec["host"], spec["port"]) for _ in range(spec["concurrency"])]
    statuses: dict[str, int] = {}
    measuring = False
    stop = False

    async def caller(index: int, conn: Connection) -> None:
        turn = index  # callers start at different requests, so every kind is in flight at once
        while not stop:
            status, headers = await conn.head(raws[turn % len(raws)])
            async for _ in conn.body_chunks(headers):
                pass
            turn += 1
            if measuring:
                statuses[str(status)] = statuses.get(str(status), 0) + 1

    tasks = [asyncio.ensure_future(caller(i, c)) for i, c in enumerate(conns)]
    await asyncio.sleep(spec["warmup_s"])
    await _phase("warm")
    measuring = True
    started = time.perf_counter()
    await asyncio.sleep(spec["duration_s"])
    stop = True
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - started
    for c in conns:
        c.close()
    total = sum(statuses.values())
    return {
        "requests": total,
        "errors": total - statuses.get("200", 0),
        "statuses": statuses,
        "rps": total / seconds,
    }


async def _one_stream(conn: Connection, raw: bytes) -> tuple[float, int, int]:
    """(time to first body byte, SSE events, status) of one streamed request."""
    started = time.perf_counter()
    status, headers = await conn.head(raw)
    ttfb = 0.0
    events = 0
    async for chunk in conn.body_chunks(headers):
        if not ttfb:
            ttfb = time.perf_counter() - started
        events += chunk.count(b"\n\n")
    return ttfb, events, status


async def _stream(spec: dict[str, Any]) -> dict[str, Any]:
    raw = _request_bytes(spec)
    conns = [Connection(spec["host"], spec["port"]) for _ in range(spec["concurrency"])]

    async def run(total: int) -> list[tuple[float, int, int]]:
        remaining = [total]
        out: list[tuple[float, int, int]] = []

        async def caller(conn: Connection) -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                out.append(await _one_stream(conn, raw))

        await asyncio.gather(*(caller(c) for c in conns))
        return out

    await run(spec["warmup_count"])
    await _phase("warm")
    started = time.perf_counter()
    results = await run(spec["count"])
    seconds = time.perf_counter() - started
    for c in conns:
        c.close()
    ttfbs = [r[0] for r in results]
    events = sum(r[1] for r in results)
    return {
        "streams": len(results),
        "errors": sum(1 for r in results if r[2] != 200),
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "ttfb_p50_ms": percentile(ttfbs, 50) * 1000,
        "ttfb_p99_ms": percentile(ttfbs, 99) * 1000,
    }


async def _hold(spec: dict[str, Any]) -> dict[str, Any]:
    raw = _request_bytes(spec)
    count = spec["count"]
    opened = asyncio.Semaphore(spec.get("open_concurrency", 64))
    first: list[float] = []
    failed = 0
    all_open = asyncio.Event()
    conns = [Connection(spec["host"], spec["port"]) for _ in range(count)]

    async def holder(conn: Connection) -> None:
        nonlocal failed
        try:
            async with opened:
                started = time.perf_counter()
                status, headers = await conn.head(raw)
                chunks = conn.body_chunks(headers)
                await chunks.__anext__()
                if status != 200:
                    failed += 1
                    return
                first.append(time.perf_counter() - started)
        except (OSError, asyncio.IncompleteReadError, StopAsyncIteration):
            failed += 1
            return
        finally:
            if len(first) + failed == count:
                all_open.set()
        # Keep reading, as a real client would, so no buffer grows on the server for want of a reader.
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            async for _ in chunks:
                pass

    tasks = [asyncio.ensure_future(holder(c)) for c in conns]
    await all_open.wait()
    await _phase("holding", open=len(first), failed=failed)
    for task in tasks:
        task.cancel()
    for c in conns:
        c.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "open": len(first),
        "failed": failed,
        "first_event_p50_ms": percentile(first, 50) * 1000,
        "first_event_p99_ms": percentile(first, 99) * 1000,
    }


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.buffer.flush()


async def _phase(name: str, **extra: Any) -> None:
    """Tell the orchestrator a phase ended and wait for its go-ahead (a line on stdin)."""
    _emit({"phase": name, **extra})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


MODES = {"closed": _closed, "stream": _stream, "hold": _hold, "mix": _mix, "rotate": _rotate}


def raise_fd_limit() -> int:
    """Raise the open-file soft limit to the hard limit (1,000 held streams need ~2,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (less CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str], modes: dict[str, Any] = MODES) -> int:
    """Run the mode the orchestrator's JSON spec names; the floor reuses this with its own modes."""
    spec = orjson.loads(argv[1])
    raise_fd_limit()
    loop = new_event_loop()
    try:
        result = loop.run_until_complete(modes[spec["mode"]](spec))
    finally:
        loop.close()
    _emit({"phase": "done", "result": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
