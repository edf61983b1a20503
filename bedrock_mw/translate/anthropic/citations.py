"""Bedrock ``Citation`` / ``CitationsDelta`` values as Anthropic text-block citations.

One mapping serves the non-streamed ``citationsContent`` block and the stream's ``citation`` delta,
so a streamed message accumulates to the same citations as the plain one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .shapes import Citation

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import CitationOutputTypeDef, CitationsDeltaTypeDef


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _cited_text(citation: CitationOutputTypeDef | CitationsDeltaTypeDef) -> str:
    parts = citation.get("sourceContent")
    if not isinstance(parts, list):
        return ""
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def anthropic_citation(
    citation: CitationOutputTypeDef | CitationsDeltaTypeDef, titles: Sequence[str | None] = ()
) -> Citation | None:
    """One Bedrock citation as an Anthropic citation; None for location kinds Anthropic has no form for.

    ``titles`` are the client's own document titles by document index: Bedrock only knows the
    sanitised name the gateway gave each document, so the client's title (or null) is reported.
    """
    if not isinstance(citation, dict):
        return None
    location = citation.get("location")
    if not isinstance(location, dict):
        return None
    for kind, spot in location.items():
        if not isinstance(spot, dict):
            continue
        index = _int(spot.get("documentIndex"))
        start, end = _int(spot.get("start")), _int(spot.get("end"))
        text = _cited_text(citation)
        title = titles[index] if index < len(titles) else citation.get("title")
        if kind == "documentChar":
            return {
                "type": "char_location",
                "cited_text": text,
                "document_index": index,
                "document_title": title,
                "start_char_index": start,
                "end_char_index": end,
            }
        if kind == "documentPage":
            return {
                "type": "page_location",
                "cited_text": text,
                "document_index": index,
                "document_title": title,
                "start_page_number": start,
                "end_page_number": end,
            }
        if kind == "documentChunk":
            return {
                "type": "content_block_location",
                "cited_text": text,
                "document_index": index,
                "document_title": title,
                "start_block_index": start,
                "end_block_index": end,
            }
    return None  # web and search-result locations: the gateway sends no request that yields them
