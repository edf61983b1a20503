"""The only change the pass-through makes to a request body: betas Bedrock would refuse.

Bedrock refuses a whole call for one ``anthropic_beta`` flag it does not take ("invalid beta flag").
Clients built for Anthropic's API (Claude Code in Bedrock mode among them) may send such flags, and
a fallback provider may take fewer than the first. The flags live in the InvokeModel body's
``anthropic_beta`` or in Converse's ``additionalModelRequestFields.anthropic_beta``; only when one
must go is the body parsed and written again, and the dropped flags are named in a response header.
Every other body goes to Bedrock byte for byte.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from ..http.body import DEFAULT_MAX_DEPTH, check_depth
from ..translate.anthropic.betas import DEFAULT_SUPPORTED_BETAS, split_betas
from ..translate.anthropic.request import NOTE_DROPPED_BETAS

_MARKER = b'"anthropic_beta"'


def lower_betas(
    body: bytes,
    supported: list[str] | None,
    notes: MutableMapping[str, str],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """``body`` without the ``anthropic_beta`` flags Bedrock refuses (the same bytes when none)."""
    if _MARKER not in body:
        return body
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body  # Bedrock answers a body that is not JSON with its own ValidationException
    if not isinstance(parsed, dict):
        return body
    allowed = DEFAULT_SUPPORTED_BETAS if supported is None else frozenset(supported)
    holder: Any = parsed
    if "anthropic_beta" not in parsed:
        holder = parsed.get("additionalModelRequestFields")
    if not isinstance(holder, dict) or not isinstance(holder.get("anthropic_beta"), list):
        return body
    flags = [flag for flag in holder["anthropic_beta"] if isinstance(flag, str)]
    kept, dropped = split_betas(flags, allowed)
    if not dropped:
        return body
    if kept:
        holder["anthropic_beta"] = kept
    else:
        del holder["anthropic_beta"]
    check_depth(body, parsed, max_depth)  # written again below: orjson writes fewer levels than it reads
    notes[NOTE_DROPPED_BETAS] = ",".join(dropped)
    return orjson.dumps(parsed)
