"""The ``anthropic-beta`` flags Bedrock's Claude models accept, kept in one place.

Bedrock validates ``anthropic_beta`` (sent in ``additionalModelRequestFields``) against its own list and
refuses the whole request for a flag it does not know ("invalid beta flag"), so the gateway forwards
only flags on this list and reports the rest in a response header instead of failing the call.

Sources (checked 2025-2026): the ``anthropic_beta`` parameter of "Anthropic Claude Messages API -
Request and Response" in the Amazon Bedrock user guide
(docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html),
its "Tool use" page (fine-grained tool streaming, tool search, tool examples) and "Extended thinking"
page (interleaved thinking, ``dev-full-thinking``). Hosts can replace the list in configuration when
AWS documents more.
"""

from __future__ import annotations

from collections.abc import Iterable

BEDROCK_DOCUMENTED_BETAS: tuple[str, ...] = (
    "computer-use-2024-10-22",
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "token-efficient-tools-2025-02-19",
    "fine-grained-tool-streaming-2025-05-14",
    "interleaved-thinking-2025-05-14",
    "dev-full-thinking-2025-05-14",
    "output-128k-2025-02-19",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "tool-search-tool-2025-10-19",
    "tool-examples-2025-10-29",
)

DEFAULT_SUPPORTED_BETAS: frozenset[str] = frozenset(BEDROCK_DOCUMENTED_BETAS)

INTERLEAVED_THINKING = "interleaved-thinking-2025-05-14"
CONTEXT_MANAGEMENT = "context-management-2025-06-27"


def parse_beta_header(values: str | Iterable[str] | None) -> tuple[str, ...]:
    """The flags of one or more ``anthropic-beta`` header values, in order, without blanks or repeats."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = (values,)
    seen: dict[str, None] = {}
    for value in values:
        for flag in value.split(","):
            flag = flag.strip()
            if flag:
                seen.setdefault(flag, None)
    return tuple(seen)


def split_betas(requested: Iterable[str], supported: frozenset[str]) -> tuple[list[str], list[str]]:
    """``(forwarded, dropped)``: the requested flags Bedrock takes, and the ones it would refuse."""
    kept: list[str] = []
    dropped: list[str] = []
    for flag in requested:
        (kept if flag in supported else dropped).append(flag)
    return kept, dropped
