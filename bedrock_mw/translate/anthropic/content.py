"""Anthropic content blocks to Converse content blocks, validating as it goes.

Every refusal names the field path (``messages.2.content.0.source.media_type``) both in the message and
in ``param``, so a client sees exactly what to fix before Bedrock is ever called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...routing.families import UNKNOWN_FAMILY, ModelFamily, NativeBody
from ..bedrock import (
    CACHE_TTLS,
    IMAGE_TYPES,
    TOOL_NAME,
    TOOL_NAME_RULE,
    TOOL_USE_ID,
    TOOL_USE_ID_RULE,
    DocumentNames,
    cache_point,
    decode_base64,
    document_format,
    fetched_media,
    image_format,
    is_blank,
    refuse,
)
from ..types import JSONObject

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import DocumentFormatType
    from mypy_boto3_bedrock_runtime.type_defs import (
        CachePointBlockTypeDef,
        ContentBlockTypeDef,
        DocumentBlockTypeDef,
        DocumentContentBlockTypeDef,
        DocumentSourceTypeDef,
        ImageBlockTypeDef,
        SearchResultBlockTypeDef,
        SearchResultContentBlockTypeDef,
        ToolResultBlockTypeDef,
        ToolResultContentBlockTypeDef,
        ToolUseBlockTypeDef,
    )
from ..bedrock import (
    image,
)

# Blocks that only Anthropic's own servers produce or consume (server tools, containers).
SERVER_BLOCK_TYPES = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
    }
)

URL_NOT_FETCHED = "image URLs are not fetched by this gateway; send base64"
fail = refuse  # this dialect's refusals name the field path first, as Bedrock's rules do


def is_claude(family: ModelFamily) -> bool:
    """Whether Anthropic-only request fields (thinking, top_k, anthropic_beta) may be sent."""
    # Anthropic-only request fields (thinking, top_k, anthropic_beta) go to Claude, or to a model whose
    # family we do not know (Bedrock then decides).
    return family.native_body is NativeBody.ANTHROPIC or family is UNKNOWN_FAMILY


def as_dict(value: Any, path: str) -> JSONObject:
    """``value`` if it is a JSON object, else a 400."""
    if not isinstance(value, dict):
        raise fail(path, "must be an object")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    """``value`` if it is a JSON array, else a 400."""
    if not isinstance(value, list):
        raise fail(path, "must be an array")
    return value


def as_str(value: Any, path: str) -> str:
    """``value`` if it is a string, else a 400."""
    if not isinstance(value, str):
        raise fail(path, "must be a string")
    return value


def as_bool(value: Any, path: str) -> bool:
    """``value`` if it is a boolean, else a 400."""
    if not isinstance(value, bool):
        raise fail(path, "must be a boolean")
    return value


def as_int(value: Any, path: str, *, minimum: int) -> int:
    """``value`` if it is an integer of at least ``minimum`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, "must be an integer")
    if value < minimum:
        raise fail(path, f"must be at least {minimum}")
    return value


def as_number(value: Any, path: str, low: float, high: float) -> float:
    """``value`` if it is a number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(path, "must be a number")
    if not low <= value <= high:
        raise fail(path, f"must be between {low:g} and {high:g}")
    return float(value)


@dataclass(slots=True)
class ContentContext:
    """State shared by every block of one request: limits, counters, fetched media."""

    family: ModelFamily
    allow_url_fetch: bool
    media: Mapping[str, tuple[bytes, str]]
    cache_points: int = 0
    document_names: DocumentNames = field(default_factory=DocumentNames)
    document_titles: list[str | None] = field(default_factory=list)

    def cache_point(self, value: Any, path: str) -> CachePointBlockTypeDef | None:
        """Validate a ``cache_control`` value and count it; the Converse cachePoint to insert, if any."""
        if value is None:
            return None
        control = as_dict(value, path)
        if control.get("type") != "ephemeral":
            raise fail(f"{path}.type", "must be 'ephemeral'")
        ttl = control.get("ttl")
        if ttl is not None and ttl not in CACHE_TTLS:
            raise fail(f"{path}.ttl", "must be '5m' or '1h'")
        extra = set(control) - {"type", "ttl"}
        if extra:
            raise fail(f"{path}.{sorted(extra)[0]}", "unknown field")
        self.cache_points += 1
        return cache_point(ttl) if self.family.prompt_caching else None

    def document_name(self, title: Any, path: str) -> str:
        """A Bedrock-legal, request-unique document name derived from ``title`` or ``document-N``."""
        wanted = None if title is None else as_str(title, path)
        self.document_titles.append(wanted)
        return self.document_names.name(wanted)

    def fetched(self, url: Any, path: str, kind: str) -> tuple[bytes, str]:
        """The bytes and media type the app fetched for ``url`` (only when the host enabled fetching)."""
        address = as_str(url, path)
        if not self.allow_url_fetch:
            raise fail(
                path,
                URL_NOT_FETCHED
                if kind == "image"
                else f"{kind} URLs are not fetched by this gateway; send base64",
            )
        return fetched_media(self.media, address, path, kind)


def image_block(block: JSONObject, path: str, ctx: ContentContext) -> ImageBlockTypeDef:
    """An Anthropic ``image`` block as a Converse ``ImageBlock``."""
    if not ctx.family.images:
        raise fail(path, f"model family '{ctx.family.name}' does not accept images")
    source = as_dict(block.get("source"), f"{path}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if not isinstance(media_type, str) or image_format(media_type) is None:
            raise fail(f"{path}.source.media_type", f"must be one of {IMAGE_TYPES}")
        data = decode_base64(as_str(source.get("data"), f"{path}.source.data"), f"{path}.source.data")
        return image(data, media_type, f"{path}.source.media_type")
    if kind == "url":
        data, media_type = ctx.fetched(source.get("url"), f"{path}.source.url", "image")
        return image(data, media_type, f"{path}.source.url")
    if kind == "file":
        raise fail(f"{path}.source.type", "Files API sources are not available through Bedrock; send base64")
    raise fail(f"{path}.source.type", "must be 'base64' or 'url'")


def _citations_enabled(block: JSONObject, path: str) -> bool:
    citations = block.get("citations")
    if citations is None:
        return False
    enabled = as_dict(citations, f"{path}.citations").get("enabled")
    return enabled is not None and as_bool(enabled, f"{path}.citations.enabled")


def document_block(block: JSONObject, path: str, ctx: ContentContext) -> DocumentBlockTypeDef:
    """An Anthropic ``document`` block as a Converse ``DocumentBlock``."""
    if not ctx.family.documents:
        raise fail(path, f"model family '{ctx.family.name}' does not accept documents")
    source = as_dict(block.get("source"), f"{path}.source")
    kind = source.get("type")
    fmt: DocumentFormatType
    src: DocumentSourceTypeDef
    if kind == "base64":
        if source.get("media_type") != "application/pdf":
            raise fail(f"{path}.source.media_type", "must be 'application/pdf'")
        data = decode_base64(as_str(source.get("data"), f"{path}.source.data"), f"{path}.source.data")
        fmt, src = "pdf", {"bytes": data}
    elif kind == "text":
        if source.get("media_type", "text/plain") != "text/plain":
            raise fail(f"{path}.source.media_type", "must be 'text/plain'")
        text = as_str(source.get("data"), f"{path}.source.data")
        if not text:
            raise fail(f"{path}.source.data", "must not be empty")
        fmt, src = "txt", {"bytes": text.encode("utf-8")}
    elif kind == "content":
        fmt, src = "txt", {"content": _document_content(source.get("content"), f"{path}.source.content")}
    elif kind == "url":
        data, media_type = ctx.fetched(source.get("url"), f"{path}.source.url", "document")
        fetched_format = document_format(media_type)
        if fetched_format is None:
            raise fail(f"{path}.source.url", f"fetched content type {media_type!r} is not a Bedrock document")
        fmt, src = fetched_format, {"bytes": data}
    elif kind == "file":
        raise fail(f"{path}.source.type", "Files API sources are not available through Bedrock; send base64")
    else:
        raise fail(f"{path}.source.type", "must be 'base64', 'text', 'content' or 'url'")
    out: DocumentBlockTypeDef = {
        "format": fmt,
        "name": ctx.document_name(block.get("title"), f"{path}.title"),
        "source": src,
    }
    context = block.get("context")
    if context is not None and not is_blank(as_str(context, f"{path}.context")):
        out["context"] = context
    if _citations_enabled(block, path):
        out["citations"] = {"enabled": True}
    return out


def _document_content(value: Any, path: str) -> list[DocumentContentBlockTypeDef]:
    if isinstance(value, str):
        value = [{"type": "text", "text": value}]
    parts: list[DocumentContentBlockTypeDef] = []
    for i, item in enumerate(as_list(value, path)):
        part = as_dict(item, f"{path}.{i}")
        if part.get("type") != "text":
            raise fail(f"{path}.{i}.type", "only text blocks are supported in a content document")
        text = as_str(part.get("text"), f"{path}.{i}.text")
        if not is_blank(text):
            parts.append({"text": text})
    if not parts:
        raise fail(path, "a content document needs at least one non-blank text block")
    return parts


def search_result_block(block: JSONObject, path: str) -> SearchResultBlockTypeDef:
    """An Anthropic ``search_result`` block as a Converse ``SearchResultBlock``."""
    if _citations_enabled(block, path):
        raise fail(f"{path}.citations", "search result citations are not supported by this gateway")
    content: list[SearchResultContentBlockTypeDef] = []
    for i, item in enumerate(as_list(block.get("content"), f"{path}.content")):
        part = as_dict(item, f"{path}.content.{i}")
        if part.get("type") != "text":
            raise fail(f"{path}.content.{i}.type", "must be 'text'")
        content.append({"text": as_str(part.get("text"), f"{path}.content.{i}.text")})
    return {
        "source": as_str(block.get("source"), f"{path}.source"),
        "title": as_str(block.get("title"), f"{path}.title"),
        "content": content,
    }


def tool_result_block(block: JSONObject, path: str, ctx: ContentContext) -> list[ContentBlockTypeDef]:
    """An Anthropic ``tool_result`` block as a Converse ``toolResult`` (plus a cachePoint if marked)."""
    tool_use_id = as_str(block.get("tool_use_id"), f"{path}.tool_use_id")
    raw = block.get("content")
    items: list[Any] = (
        []
        if raw is None
        else [{"type": "text", "text": raw}]
        if isinstance(raw, str)
        else as_list(raw, f"{path}.content")
    )
    content: list[ToolResultContentBlockTypeDef] = []
    marks = [ctx.cache_point(block.get("cache_control"), f"{path}.cache_control")]
    for i, item in enumerate(items):
        ipath = f"{path}.content.{i}" if not isinstance(raw, str) else f"{path}.content"
        part = as_dict(item, ipath)
        kind = part.get("type")
        if kind == "text":
            text = as_str(part.get("text"), f"{ipath}.text")
            if not is_blank(text):
                content.append({"text": text})
        elif kind == "image":
            content.append({"image": image_block(part, ipath, ctx)})
        elif kind == "document":
            content.append({"document": document_block(part, ipath, ctx)})
        elif kind == "search_result":
            content.append({"searchResult": search_result_block(part, ipath)})
        else:
            raise fail(f"{ipath}.type", f"unsupported tool_result content type {kind!r}")
        marks.append(ctx.cache_point(part.get("cache_control"), f"{ipath}.cache_control"))
    result: ToolResultBlockTypeDef = {"toolUseId": tool_use_id, "content": content}
    is_error = block.get("is_error")
    if is_error is not None and as_bool(is_error, f"{path}.is_error"):
        result["status"] = "error"
    out: list[ContentBlockTypeDef] = [{"toolResult": result}]
    # Converse has no cache point inside a tool result: every mark in it becomes one point after it.
    point = next((m for m in marks if m is not None), None)
    if point is not None:
        out.append({"cachePoint": point})
    return out


_ROLE_OF_BLOCK = {
    "tool_use": "assistant",
    "thinking": "assistant",
    "redacted_thinking": "assistant",
    "tool_result": "user",
}


def message_blocks(content: Any, path: str, role: str, ctx: ContentContext) -> list[ContentBlockTypeDef]:
    """One Anthropic message's ``content`` as Converse blocks; blank text is dropped (Bedrock refuses it)."""
    if isinstance(content, str):
        return [] if is_blank(content) else [{"text": content}]
    out: list[ContentBlockTypeDef] = []
    for i, item in enumerate(as_list(content, path)):
        bpath = f"{path}.{i}"
        block = as_dict(item, bpath)
        kind = block.get("type")
        if not isinstance(kind, str):
            raise fail(f"{bpath}.type", "must be a string")
        if kind in SERVER_BLOCK_TYPES:
            raise fail(
                f"{bpath}.type",
                f"{kind!r} blocks belong to Anthropic server tools, which Bedrock does not run",
            )
        wanted = _ROLE_OF_BLOCK.get(kind)
        if wanted is not None and wanted != role:
            raise fail(f"{bpath}.type", f"{kind!r} blocks may only appear in {wanted} messages")
        if kind == "text":
            text = as_str(block.get("text"), f"{bpath}.text")
            point = ctx.cache_point(block.get("cache_control"), f"{bpath}.cache_control")
            if not is_blank(text):
                out.append({"text": text})
                if point is not None:
                    out.append({"cachePoint": point})
            continue
        if kind == "tool_result":
            out.extend(tool_result_block(block, bpath, ctx))
            continue
        if kind == "image":
            out.append({"image": image_block(block, bpath, ctx)})
        elif kind == "document":
            out.append({"document": document_block(block, bpath, ctx)})
        elif kind == "search_result":
            out.append({"searchResult": search_result_block(block, bpath)})
        elif kind == "tool_use":
            out.append({"toolUse": _tool_use_block(block, bpath)})
        elif kind == "thinking":
            if block.get("cache_control") is not None:
                raise fail(f"{bpath}.cache_control", "thinking blocks cannot carry cache_control")
            text = as_str(block.get("thinking"), f"{bpath}.thinking")
            signature = as_str(block.get("signature"), f"{bpath}.signature")
            out.append({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}})
            continue
        elif kind == "redacted_thinking":
            if block.get("cache_control") is not None:
                raise fail(f"{bpath}.cache_control", "thinking blocks cannot carry cache_control")
            data = decode_base64(as_str(block.get("data"), f"{bpath}.data"), f"{bpath}.data")
            out.append({"reasoningContent": {"redactedContent": data}})
            continue
        else:
            raise fail(f"{bpath}.type", f"unsupported content block type {kind!r}")
        point = ctx.cache_point(block.get("cache_control"), f"{bpath}.cache_control")
        if point is not None:
            out.append({"cachePoint": point})
    return out


def _tool_use_block(block: JSONObject, path: str) -> ToolUseBlockTypeDef:
    caller = block.get("caller")
    if caller is not None and as_dict(caller, f"{path}.caller").get("type") != "direct":
        raise fail(f"{path}.caller", "only directly called tools are supported through Bedrock")
    tool_id = as_str(block.get("id"), f"{path}.id")
    if not TOOL_USE_ID.fullmatch(tool_id):
        raise fail(f"{path}.id", TOOL_USE_ID_RULE)
    name = as_str(block.get("name"), f"{path}.name")
    if not TOOL_NAME.fullmatch(name):
        raise fail(f"{path}.name", TOOL_NAME_RULE)
    return {"toolUseId": tool_id, "name": name, "input": as_dict(block.get("input"), f"{path}.input")}
