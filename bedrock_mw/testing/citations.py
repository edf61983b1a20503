"""The emulator's cited answer: a ``citationsContent`` block quoting the first sentence of a document.

Rule (also in docs/emulator.md): when a request has a document with ``citations.enabled``, the first
such document whose text can be read (a ``txt``-like ``bytes`` source, a ``text`` source or a
``content`` source) is cited. Its first sentence (up to and including the first ``.``, ``!`` or
``?``, else all of it) is both the generated text and the cited text, at a ``documentChar`` location
``start`` 0, ``end`` = the sentence's length; ``documentIndex`` is the document's position among all
documents of the request (in message order).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_SENTENCE = re.compile(r"[^.!?]*[.!?]")
_BINARY_FORMATS = frozenset({"pdf", "doc", "docx", "xls", "xlsx"})


def _documents(messages: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for message in messages:
        for block in message.get("content") or []:
            if "document" in block:
                yield block["document"]
            elif "toolResult" in block:
                for part in block["toolResult"].get("content") or []:
                    if "document" in part:
                        yield part["document"]


def _document_text(document: Mapping[str, Any]) -> str | None:
    source = document.get("source") or {}
    if "text" in source:
        return str(source["text"])
    if "content" in source:
        return "".join(str(part.get("text", "")) for part in source["content"] or [])
    if "bytes" in source and document.get("format") not in _BINARY_FORMATS:
        try:  # the wire carries blobs as base64
            return base64.b64decode(str(source["bytes"]), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
    return None


def first_sentence(text: str) -> str:
    """The text up to and including its first sentence end (all of it when there is none)."""
    match = _SENTENCE.match(text)
    return match.group(0) if match else text


def citation_block(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A ``citationsContent`` block citing the first citable document, or None when none asks for it."""
    for index, document in enumerate(_documents(messages)):
        if not (document.get("citations") or {}).get("enabled"):
            continue
        text = _document_text(document)
        sentence = first_sentence(text) if text else ""
        if not sentence.strip():
            continue
        citation = {
            "title": str(document.get("name", "")),
            "sourceContent": [{"text": sentence}],
            "location": {"documentChar": {"documentIndex": index, "start": 0, "end": len(sentence)}},
        }
        return {"citationsContent": {"content": [{"text": sentence}], "citations": [citation]}}
    return None
