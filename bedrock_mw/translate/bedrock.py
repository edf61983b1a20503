"""Bedrock's own rules for Converse input, written once for every client dialect.

A dialect translator (``translate/anthropic``, ``translate/openai``, later ones) reads its caller's shape
and calls this module for anything Bedrock decides: which image and document formats exist, what a
tool name, tool-use id, document name or request-metadata string may hold, how a cache point looks,
that blobs are non-empty bytes. botocore's service model for ``bedrock-runtime`` is the authority
(``ImageFormat``, ``DocumentFormat``, ``ToolName``, ``ToolUseId``, ``DocumentBlock.name``,
``RequestMetadata``, ``CachePointBlock``); where the dialects used to differ, the rule here is
Bedrock's. Refusals are 400s whose message starts with the offending field path.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..errors import GatewayError, invalid

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import CacheTTLType, DocumentFormatType, ImageFormatType
    from mypy_boto3_bedrock_runtime.type_defs import (
        CachePointBlockTypeDef,
        ImageBlockTypeDef,
        InferenceConfigurationTypeDef,
        MessageTypeDef,
        ToolConfigurationTypeDef,
        ToolSpecificationTypeDef,
        ToolTypeDef,
    )

    from .types import ConverseParams

# The response header naming how many cache hints were dropped because the model cannot cache.
DROPPED_CACHE_HEADER: Final = "x-bedrock-mw-dropped-cache-control"

# Media type -> Bedrock ``ImageFormat``. ``image/jpg`` is not a registered type, but servers send it
# for JPEG files and the bytes are what Bedrock reads, so it is accepted as ``jpeg``.
IMAGE_FORMATS: Final[Mapping[str, ImageFormatType]] = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}
IMAGE_TYPES: Final = "image/jpeg, image/png, image/gif or image/webp"
# Media type -> Bedrock ``DocumentFormat`` (every format Converse accepts).
DOCUMENT_FORMATS: Final[Mapping[str, DocumentFormatType]] = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/html": "html",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
_DOCUMENT_EXTENSIONS: Final[Mapping[str, DocumentFormatType]] = {f: f for f in DOCUMENT_FORMATS.values()}

# ``ToolName`` and ``ToolUseId``: refused before the call rather than by Bedrock.
TOOL_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
TOOL_NAME_RULE: Final = "must be 1-64 characters of letters, digits, '_' or '-'"
TOOL_USE_ID: Final = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
TOOL_USE_ID_RULE: Final = "must be 1-64 characters of letters, digits, '_', '.', ':' or '-'"

# ``CachePointBlock``: type ``default``, optional ``ttl``.
CACHE_TTLS: Final = ("5m", "1h")

# ``RequestMetadata``: at most 16 pairs; keys 1-256 and values 0-256 characters of one alphabet
# (the service's pattern ``[a-zA-Z0-9\s:_@$#=/+,-.]``, where ``\s`` is ASCII whitespace).
METADATA_MAX_PAIRS: Final = 16
METADATA_MAX_LENGTH: Final = 256
_METADATA_CHARS: Final = frozenset(string.ascii_letters + string.digits + " \t\n\r\x0b\x0c:_@$#=/+,-.")
_METADATA_JUNK: Final = re.compile(r"[^a-zA-Z0-9 \t\n\r\x0b\x0c:_@$#=/+,\-.]")

# ``DocumentBlock.name``: 1-200 characters of letters, digits, single whitespace characters, hyphens,
# parentheses and square brackets, unique within a request.
DOCUMENT_NAME_MAX: Final = 200
_DOCUMENT_NAME_JUNK: Final = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
_WHITESPACE: Final = re.compile(r"\s+")


def refuse(param: str, reason: str) -> GatewayError:
    """A 400 whose message starts with the offending field path."""
    return invalid(f"{param}: {reason}", param=param)


def is_blank(text: str) -> bool:
    """Bedrock refuses text blocks that are empty or only whitespace."""
    return not text.strip()


def media_type(content_type: str) -> str:
    """The bare, lower-case media type of a ``Content-Type`` value (parameters dropped)."""
    return content_type.split(";", 1)[0].strip().lower()


def image_format(content_type: str) -> ImageFormatType | None:
    """Bedrock's ``ImageFormat`` for a media type, or None when Bedrock takes no such image."""
    return IMAGE_FORMATS.get(media_type(content_type))


def image(data: bytes, content_type: str, param: str) -> ImageBlockTypeDef:
    """A Converse ``ImageBlock`` of ``data``; a 400 at ``param`` when the type is not Bedrock's."""
    found = image_format(content_type)
    if found is None:
        raise refuse(param, f"image type {content_type!r} is not one of {IMAGE_TYPES}")
    return {"format": found, "source": {"bytes": require_bytes(data, param)}}


def document_format(content_type: str, filename: str = "") -> DocumentFormatType | None:
    """Bedrock's ``DocumentFormat`` for a media type, else for ``filename``'s extension, else None."""
    found = DOCUMENT_FORMATS.get(media_type(content_type))
    if found is None and "." in filename:
        found = _DOCUMENT_EXTENSIONS.get(filename.rsplit(".", 1)[1].lower())
    return found


def require_bytes(data: bytes, param: str) -> bytes:
    """``data`` if non-empty: Bedrock's image and document blobs have a minimum length of 1."""
    if not data:
        raise refuse(param, "must not be empty")
    return data


def decode_base64(text: str, param: str) -> bytes:
    """Strictly decoded, non-empty base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise refuse(param, "is not valid base64") from None
    return require_bytes(raw, param)


def fetched_media(
    media: Mapping[str, tuple[bytes, str]], url: str, param: str, kind: str
) -> tuple[bytes, str]:
    """The bytes and bare media type the app fetched for ``url`` (Bedrock takes bytes, not URLs)."""
    got = media.get(url)
    if got is None:
        raise refuse(param, f"the {kind} at this URL could not be fetched")
    data, content_type = got
    if not data:
        raise refuse(param, f"the {kind} at this URL is empty")
    return data, media_type(content_type)


def unique_urls(urls: Iterable[str]) -> list[str]:
    """``urls`` in order without repeats: what the app fetches before translating (one fetch a URL)."""
    return list(dict.fromkeys(urls))


def cache_point(ttl: CacheTTLType | None = None) -> CachePointBlockTypeDef:
    """A Converse ``CachePointBlock`` (wrap it as ``{"cachePoint": ...}``); callers check ``ttl``."""
    point: CachePointBlockTypeDef = {"type": "default"}
    if ttl is not None:
        point["ttl"] = ttl
    return point


def tool_spec(
    name: str, schema: Mapping[str, Any], description: str | None = None, *, strict: bool | None = None
) -> ToolTypeDef:
    """A Converse ``toolSpec`` entry; a blank description is left out (Bedrock's is a non-empty string)."""
    spec: ToolSpecificationTypeDef = {"name": name, "inputSchema": {"json": schema}}
    if description is not None and not is_blank(description):
        spec["description"] = description
    if strict is not None:
        spec["strict"] = strict
    return {"toolSpec": spec}


def uses_tools(messages: Sequence[MessageTypeDef]) -> bool:
    """Whether the conversation holds toolUse or toolResult blocks."""
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def synthesized_tools(messages: Sequence[MessageTypeDef]) -> ToolConfigurationTypeDef:
    """A toolConfig declaring each tool the history names, with an open schema."""
    # Bedrock refuses toolUse/toolResult history without a toolConfig (Claude Code's compaction request
    # sends such history with no tools): declare each tool the history names, with an open schema.
    names = dict.fromkeys(b["toolUse"]["name"] for m in messages for b in m["content"] if "toolUse" in b)
    if not names:
        names = {"tool": None}
    return {
        "tools": [
            tool_spec(name, {"type": "object"}, "A tool used earlier in this conversation.") for name in names
        ]
    }


def object_schema(schema: Mapping[str, Any], param: str) -> Mapping[str, Any]:
    """A tool's JSON schema as Bedrock takes it: an object schema, ``type: object`` added when absent.

    Bedrock refuses any other top-level type ("The value at toolConfig.tools.0.toolSpec.inputSchema.json.type
    must be one of the following: object."), while clients often send ``{"properties": ...}`` alone.
    """
    kind = schema.get("type")
    if kind is None:
        return {"type": "object", **schema}
    if kind != "object":
        raise refuse(f"{param}.type", "must be 'object': Bedrock takes object schemas only")
    return schema


def is_metadata_text(text: str) -> bool:
    """Whether ``text`` fits a ``requestMetadata`` value (alphabet and length)."""
    return len(text) <= METADATA_MAX_LENGTH and set(text) <= _METADATA_CHARS


def clean_metadata_text(text: str) -> str:
    """``text`` made to fit a ``requestMetadata`` value: other characters become ``_``, then cut."""
    return _METADATA_JUNK.sub("_", text)[:METADATA_MAX_LENGTH]


@dataclass(slots=True)
class DocumentNames:
    """Bedrock-legal, request-unique document names; one instance per request."""

    taken: set[str] = field(default_factory=set)
    count: int = 0

    def name(self, wanted: str | None) -> str:
        """``wanted`` cleaned to Bedrock's alphabet (others become spaces), else ``document-N``."""
        self.count += 1
        base = ""
        if wanted:
            cleaned = _WHITESPACE.sub(" ", _DOCUMENT_NAME_JUNK.sub(" ", wanted)).strip()
            base = cleaned[:DOCUMENT_NAME_MAX].strip()
        if not base:
            base = f"document-{self.count}"
        name, n = base, 1
        while name in self.taken:
            n += 1
            suffix = f" ({n})"
            name = base[: DOCUMENT_NAME_MAX - len(suffix)].rstrip() + suffix
        self.taken.add(name)
        return name


# -- sampling ------------------------------------------------------------------------------------
# Converse's ``inferenceConfig.temperature`` is 0..1 (botocore's service model); OpenAI's is 0..2.
TEMPERATURE_MAX: Final = 1.0


def sampling_config(
    temperature: float | None, top_p: float | None, *, exclusive: bool
) -> tuple[InferenceConfigurationTypeDef, list[str]]:
    """``temperature``/``topP`` Bedrock accepts for a caller's values, and a note per value lowered.

    A temperature above Bedrock's maximum becomes the maximum; on models that take ``temperature``
    or ``topP`` but not both, ``topP`` is left out (the caller's temperature is the usual intent).
    """
    config: InferenceConfigurationTypeDef = {}
    notes: list[str] = []
    if temperature is not None:
        config["temperature"] = min(temperature, TEMPERATURE_MAX)
        if temperature > TEMPERATURE_MAX:
            notes.append(f"temperature:{TEMPERATURE_MAX:g}(bedrock-max)")
    if top_p is not None:
        if exclusive and temperature is not None:
            notes.append("top_p:dropped(model-takes-temperature-or-top_p)")
        else:
            config["topP"] = top_p
    return config, notes


# -- Claude's extended thinking across tool turns -----------------------------------------------
LOWERED_HEADER: Final = "x-bedrock-mw-lowered"
THINKING_OFF_NOTE: Final = "thinking:off(no-thinking-block-to-replay)"


def lacks_replayed_thinking(messages: Iterable[Mapping[str, Any]]) -> bool:
    """Whether Claude would refuse thinking here: the last assistant turn used a tool without its
    thinking block first (Claude requires the block, signature intact, before the last tool use)."""
    last = next((m for m in reversed(list(messages)) if m.get("role") == "assistant"), None)
    if last is None:
        return False
    content = [b for b in last.get("content") or () if "cachePoint" not in b]
    return any("toolUse" in b for b in content) and "reasoningContent" not in content[0]


def settle_thinking(request: ConverseParams) -> str | None:
    """Turn thinking off for this call when the history cannot replay it; the note to send, if so.

    A client that cannot carry thinking blocks (chat completions, a Responses client without
    ``encrypted_content``) would otherwise get Claude's 400 on every turn after a tool call.
    The fields are a read-only mapping in botocore's shape: they are replaced, never edited.
    """
    fields = request.get("additionalModelRequestFields")
    if not fields or "thinking" not in fields:
        return None
    if not lacks_replayed_thinking(request.get("messages") or ()):
        return None
    rest = {name: value for name, value in fields.items() if name != "thinking"}
    if rest:
        request["additionalModelRequestFields"] = rest
    else:
        del request["additionalModelRequestFields"]
    return THINKING_OFF_NOTE
