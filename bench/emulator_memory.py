"""The emulator's memory with many streams whose clients never read (issue 13, item 9).

    python -m bench.emulator_memory [--streams 2000] [--words 200000]

Starts the emulator in its own process, opens ``--streams`` connections (half ConverseStream,
half InvokeModelWithResponseStream, each asking for a long answer) that send their request and
never read a byte, waits until the emulator has stopped writing, and prints its RSS before and
after and the growth per stream. The emulator should hold at most what the transport buffers per
stream, not the answer.

The emulator's listening socket gets a fixed ``SO_SNDBUF`` (``--sndbuf``, inherited by accepted
sockets) and the clients a small ``SO_RCVBUF``: left to autotune, 2,000 loopback sockets would ask
the kernel for ~3 MB each and hit its machine-wide TCP memory limit (``net.ipv4.tcp_mem``), stalling
every other TCP user of the machine. The kernel's share is not the emulator's RSS either way.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote

import orjson
import psutil
import uvicorn

from bedrock_mw.testing import EMULATOR_API_KEY, EmulatorApp

HOST = "127.0.0.1"
MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _state(port: int) -> dict[str, object]:
    # Patient: with thousands of streams filling their buffers the emulator answers slowly.
    with urllib.request.urlopen(f"http://{HOST}:{port}/_emulator/state", timeout=600) as answer:
        state: dict[str, object] = orjson.loads(answer.read())
        return state


def _request(index: int, words: int) -> bytes:
    prompt = f"emit {words} words"
    if index % 2:
        path = f"/model/{quote(MODEL_ID, safe='')}/invoke-with-response-stream"
        body = orjson.dumps(
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 64000,
                "messages": [{"role": "user", "content": prompt}],
            }
        )
    else:
        path = f"/model/{quote(MODEL_ID, safe='')}/converse-stream"
        body = orjson.dumps({"messages": [{"role": "user", "content": [{"text": prompt}]}]})
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {HOST}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {EMULATOR_API_KEY}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _settled_bytes(port: int, timeout_s: float) -> int:
    """The emulator's bytes sent on open streams, once it stops growing (or after ``timeout_s``)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sent = int(_state(port)["open_stream_bytes"])  # type: ignore[call-overload]
        if sent != last:
            last, since = sent, time.monotonic()
        elif time.monotonic() - since > 3.0:
            break
        time.sleep(0.5)
    return last


def serve(port: int, sndbuf: int) -> None:
    """The emulator on ``port``, its sockets' send buffers fixed at ``sndbuf`` bytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind((HOST, port))
    sock.listen(4096)
    config = uvicorn.Config(
        EmulatorApp(), log_config=None, log_level="warning", access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--words", type=int, default=200_000)
    parser.add_argument("--sndbuf", type=int, default=16384)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the emulator process
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.sndbuf)
        return 0
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "bench.emulator_memory",
        "--serve",
        str(port),
        "--sndbuf",
        str(args.sndbuf),
    ]
    emulator = subprocess.Popen(command)
    sockets: list[socket.socket] = []
    try:
        for _ in range(100):
            try:
                _state(port)
                break
            except OSError:
                time.sleep(0.1)
        rss = psutil.Process(emulator.pid).memory_info
        before = rss().rss
        for index in range(args.streams):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((HOST, port))
            sock.sendall(_request(index, args.words))
            sockets.append(sock)
        while int(_state(port)["open_streams"]) < args.streams:  # type: ignore[call-overload]
            time.sleep(0.2)
        sent = _settled_bytes(port, timeout_s=120)
        after = rss().rss
        mib = 1024 * 1024
        print(f"streams: {args.streams} non-reading, answer {args.words} words each, sndbuf {args.sndbuf}")
        print(f"emulator RSS before: {before / mib:.1f} MiB, after: {after / mib:.1f} MiB")
        print(f"growth per stream: {(after - before) / args.streams / 1024:.1f} KiB")
        print(
            f"bytes written on open streams: {sent / mib:.1f} MiB ({sent / args.streams / 1024:.1f} KiB each)"
        )
        state = _state(port)
        print(f"open streams: {state['open_streams']}, counters: {state['counters']}")
    finally:
        for sock in sockets:
            sock.close()
        emulator.terminate()
        emulator.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
