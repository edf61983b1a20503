"""The ``bedrock-mw`` command: ``serve``, ``emulator`` and ``check``."""

from __future__ import annotations

import argparse
import copy
import gc
import glob
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import ConfigError, GatewayConfig, alias_model, load_config
from .observability import MULTIPROC_ENV

_CONFIG_ENV = "BEDROCK_MW_CONFIG"


def app_from_env() -> object:
    """Uvicorn factory for ``serve --workers N``: each worker process builds its own gateway."""
    from .app import create_gateway

    app = create_gateway(os.environ[_CONFIG_ENV])
    _freeze_startup_objects()
    return app


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up out of the garbage collector's sight.

    Imports and the config leave ~80,000 tracked objects that live as long as the process; every
    full collection walked them all (tens of ms on the bench machine, a p99 spike whenever one ran
    mid-request). ``gc.freeze`` puts them in the permanent generation; what requests allocate is
    collected as before. Done only in ``serve``, whose process is ours: a host app decides for itself.
    """
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print("serve needs uvicorn: pip install 'bedrock-mw[server]'", file=sys.stderr)
        return 2
    cfg = load_config(args.config)  # fail fast, in the parent, with a readable error
    os.environ[_CONFIG_ENV] = os.path.abspath(args.config)
    if cfg.observability.metrics and (args.workers > 1 or os.environ.get(MULTIPROC_ENV)):
        _share_metrics_between_workers()
    uvicorn.run(
        "bedrock_mw.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=serve_logging_config(args.log_level),
        access_log=False,  # the gateway writes its own access log, without secrets
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    return 0


def serve_logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus a JSON-lines handler for the ``bedrock_mw`` logger on stdout.

    uvicorn applies it in every worker process. Only ``serve`` installs a handler: a host app that
    mounts the gateway configures its own logging and the package logger stays handler-less there.
    """
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["bedrock_mw_json"] = {"()": "bedrock_mw.observability.JsonLogFormatter"}
    config["handlers"]["bedrock_mw"] = {
        "formatter": "bedrock_mw_json",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["bedrock_mw"] = {
        "handlers": ["bedrock_mw"],
        "level": "DEBUG" if level in ("debug", "trace") else level.upper(),
        "propagate": False,
    }
    return config


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _share_metrics_between_workers() -> None:
    """Point every worker's Prometheus values at one directory, emptied first, so a scrape sums them."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        directory = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="bedrock-mw-metrics-")
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):  # a previous run's workers
        os.remove(stale)


def _emulator(args: argparse.Namespace) -> int:
    from .testing import run

    run(host=args.host, port=args.port)
    return 0


def redact_url(url: str) -> str:
    """``url`` with the password of any ``user:password@`` userinfo replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def routing_table(cfg: GatewayConfig) -> list[str]:
    """Lines describing each virtual key's provider chain and regions; never a secret."""
    lines: list[str] = []
    for p in cfg.providers:
        endpoint = redact_url(p.endpoint_url or f"https://bedrock-runtime.{p.region}.amazonaws.com")
        profile = f", profile {p.inference_profile_arn}" if p.inference_profile_arn else ""
        # Unknown accounts are said so: ARNs of other accounts are then not refused for this provider.
        account = p.known_account or "unknown"
        lines.append(
            f"provider {p.id}: auth={p.auth.mode}, region={p.region}, account={account}, "
            f"endpoint={endpoint}{profile}"
        )
    for vk in cfg.virtual_keys:
        state = " (disabled)" if vk.disabled else ""
        lines.append(f"key {vk.id}{state}:")
        for index, provider_id in enumerate(vk.providers):
            provider = cfg.provider(provider_id)
            assert provider is not None  # the config validator checked the reference
            region = (vk.default_region or provider.region) if index == 0 else provider.region
            role = "primary" if index == 0 else f"fallback {index}"
            lines.append(f"  {role}: {provider_id} in {region}")
        for alias, target in vk.model_aliases.items():
            lines.append(f"  alias {alias} -> {alias_model(target)}")
        if vk.allowed_models is not None:
            lines.append(f"  allowed models: {', '.join(vk.allowed_models)}")
        if vk.allowed_regions is not None:
            lines.append(f"  allowed regions: {', '.join(vk.allowed_regions)}")
    return lines


def _check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"config OK: {len(cfg.providers)} providers, {len(cfg.virtual_keys)} virtual keys")
    for line in routing_table(cfg):
        print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bedrock-mw`` command."""
    parser = argparse.ArgumentParser(prog="bedrock-mw", description="AWS Bedrock gateway for ASGI apps")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway standalone under uvicorn")
    serve.add_argument("--config", required=True, help="gateway config file (JSON, TOML or YAML)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's and the gateway's log level; info and below print the access log (JSON lines)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="on SIGTERM, wait this long for in-flight requests and streams, then cut them "
        "(recorded with status 499); default 60",
    )
    serve.set_defaults(func=_serve)

    emulator = sub.add_parser("emulator", help="run the built-in Bedrock emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=4010)
    emulator.set_defaults(func=_emulator)

    check = sub.add_parser("check", help="validate a config and print the routing table")
    check.add_argument("--config", required=True)
    check.set_defaults(func=_check)

    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
