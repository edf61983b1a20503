"""A client that stops reading stops the emulator: it writes what the transport takes, then waits.

The emulator counts the bytes it has handed to the server on streams still open
(``open_stream_bytes``). With a client that never reads and a tiny receive window, that count must
stop growing at what the socket buffers hold, far short of the answer, and the stream must stay
open rather than complete into memory. (Issue 13 item 9: 2,000 such streams once grew the emulator
to 7.8 GB; docs/emulator.md has the measurement.)
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import quote

import orjson
import pytest

from bedrock_mw.testing import EMULATOR_API_KEY, BedrockEmulator

pytestmark = pytest.mark.anyio

MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
# Far more than any loopback socket buffers: 60,000 one-word events are ~8 MB of Converse frames
# and ~17 MB of InvokeModel chunks, against ~4 MB the kernel's send buffer grows to at most.
EVENTS = 60_000
BOUND = 6 * 1024 * 1024
CONVERSE = (
    "converse-stream",
    {"messages": [{"role": "user", "content": [{"text": f"emit {EVENTS} events"}]}]},
)
INVOKE = (
    "invoke-with-response-stream",
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": f"emit {EVENTS} events"}],
    },
)


async def _settled(emu: BedrockEmulator) -> int:
    """``open_stream_bytes`` once it has not moved for 40 polls in a row (the writer is waiting)."""
    last, still = -1, 0
    for _ in range(3000):
        sent = emu.state.open_stream_bytes
        still = still + 1 if sent == last else 0
        if still >= 40 and sent > 0:
            return sent
        last = sent
        await asyncio.sleep(0.025)
    raise AssertionError(f"the emulator never stopped writing ({last} bytes on open streams)")


@pytest.mark.parametrize(("operation", "body"), [CONVERSE, INVOKE], ids=["converse", "invoke"])
async def test_a_client_that_never_reads_holds_the_emulator_to_its_socket_buffers(
    bedrock_emulator: BedrockEmulator, operation: str, body: dict[str, object]
) -> None:
    emu = bedrock_emulator
    payload = orjson.dumps(body)
    request = (
        f"POST /model/{quote(MODEL_ID, safe='')}/{operation} HTTP/1.1\r\nhost: emulator\r\n"
        f"authorization: Bearer {EMULATOR_API_KEY}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window that fills at once
    sock.connect(("127.0.0.1", emu.port))
    try:
        sock.sendall(request)  # and never read

        held = await _settled(emu)

        assert emu.open_streams == 1
        assert emu.state.counters["streams_completed"] == 0, "the whole answer was written into memory"
        assert held < BOUND, f"{held} bytes written for a client that read nothing"
    finally:
        sock.close()
    for _ in range(400):
        if emu.open_streams == 0:
            break
        await asyncio.sleep(0.025)
    assert emu.open_streams == 0 and emu.state.open_stream_bytes == 0
