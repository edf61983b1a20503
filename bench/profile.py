"""Profile the gateway process under one load with py-spy: ``python -m bench.profile stream|requests``.

Writes a flame graph (SVG) and py-spy's raw collapsed stacks to ``--out``; the totals by function
are what docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.loadgen import raise_fd_limit
from bench.procs import Phased, add_fault, running, start_emulator, start_gateway
from bench.run import ANTHROPIC_HEADERS, OPENAI_HEADERS, PROMPT, _http_spec, _messages_body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("load", choices=["stream", "requests", "chat"])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("bench/results/profile"))
    parser.add_argument(
        "--paced", type=float, default=0.0, help="stream: seconds the emulator pauses between events"
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raise_fd_limit()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        emulator = start_emulator(Path(tmp))
        gateway = start_gateway(emulator, Path(tmp))
        with running(emulator, gateway):
            if args.paced:  # each event reaches the gateway alone: the per-event cost without bursts
                for operation in ("converse-stream", "invoke-with-response-stream"):
                    add_fault(emulator, {"operation": operation, "event_delay_s": args.paced})
            if args.load == "stream":
                body = _messages_body(f"emit 1000 events. {PROMPT}", True, max_tokens=1100)
                spec = {
                    **_http_spec(gateway, "/v1/messages", body, ANTHROPIC_HEADERS),
                    "mode": "stream",
                    "concurrency": 4,
                    "warmup_count": 2,
                    "count": 10_000,
                }
            else:
                path, headers = (
                    ("/v1/messages", ANTHROPIC_HEADERS)
                    if args.load == "requests"
                    else ("/v1/chat/completions", OPENAI_HEADERS)
                )
                spec = {
                    **_http_spec(gateway, path, _messages_body(PROMPT), headers),
                    "mode": "closed",
                    "concurrency": args.concurrency,
                    "warmup_s": 1.0,
                    "duration_s": args.seconds + 2,
                }
            load = Phased("bench.loadgen", spec)
            load.expect("warm")
            load.go()
            for fmt, suffix in (("speedscope", "json"), ("raw", "txt")):
                subprocess.run(
                    [
                        py_spy,
                        "record",
                        "-p",
                        str(gateway.proc.pid),
                        "-d",
                        str(int(args.seconds / 2)),
                        "-r",
                        "200",
                        "-f",
                        fmt,
                        "-o",
                        str(args.out / f"{args.load}.{suffix}"),
                        "--nonblocking",
                    ],
                    check=True,
                )
            load.proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
