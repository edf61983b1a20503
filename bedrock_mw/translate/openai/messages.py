"""OpenAI chat ``messages`` → Converse ``system`` and ``messages`` (content blocks, tool turns, cache points).

Bedrock wants strictly alternating ``user``/``assistant`` turns that start with ``user``; OpenAI allows
any order, so consecutive turns of the same Bedrock role are merged and tool messages become
``toolResult`` blocks of a user turn. Everything is validated here, before Bedrock is called.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

from ...errors import invalid
from ...routing.families import ModelFamily
from ..bedrock import (
    CACHE_TTLS,
    TOOL_NAME,
    TOOL_NAME_RULE,
    TOOL_USE_ID,
    TOOL_USE_ID_RULE,
    DocumentNames,
    cache_point,
    decode_base64,
    document_format,
    fetched_media,
    image,
    is_blank,
)
from ..types import JSONObject

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import ConversationRoleType
    from mypy_boto3_bedrock_runtime.type_defs import (
        CachePointBlockTypeDef,
        ContentBlockTypeDef,
        DocumentBlockTypeDef,
        ImageBlockTypeDef,
        MessageTypeDef,
        SystemContentBlockTypeDef,
        ToolResultContentBlockTypeDef,
        ToolTypeDef,
    )

    CacheableBlocks = list[ContentBlockTypeDef] | list[SystemContentBlockTypeDef] | list[ToolTypeDef]

_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)


def is_remote_url(url: object) -> TypeGuard[str]:
    """True for an image URL the gateway would have to fetch (anything but ``data:``)."""
    return isinstance(url, str) and not url.startswith("data:")


def decode_data_url(url: str, param: str) -> tuple[bytes, str]:
    """The bytes and media type of a base64 ``data:`` URL."""
    match = _DATA_URL.fullmatch(url)
    if match is None or ";base64" not in match.group(2).lower():
        raise invalid(f"{param} must be a base64 data: URL", param=param)
    return decode_base64(match.group(3), param), match.group(1).lower()


def marker_cache_point(marker: object, param: str) -> CachePointBlockTypeDef:
    """A Converse ``cachePoint`` for an OpenAI-side ``cache_control`` marker (validated)."""
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
        raise invalid(f'{param} must be {{"type": "ephemeral"}}', param=param)
    ttl = marker.get("ttl")
    if ttl is not None and ttl not in CACHE_TTLS:
        raise invalid(f"{param}.ttl must be one of {', '.join(CACHE_TTLS)}", param=f"{param}.ttl")
    return cache_point(ttl)


@dataclass(slots=True)
class CacheMarkers:
    """Counts ``cache_control`` markers and turns them into cache points when the family caches."""

    enabled: bool
    requested: int = 0

    def after(self, blocks: CacheableBlocks, holder: Mapping[str, Any], param: str) -> None:
        """Append a cache point to ``blocks`` when ``holder`` carries ``cache_control``."""
        marker = holder.get("cache_control")
        if marker is None:
            return
        point = marker_cache_point(marker, f"{param}.cache_control")
        self.requested += 1
        if self.enabled:
            blocks.append({"cachePoint": point})


@dataclass(slots=True)
class ConvertedMessages:
    """The Converse ``system`` and ``messages`` of one request, plus facts the caller checks.

    ``contents[i]`` is ``messages[i]["content"]`` itself, kept as a list to add blocks to.
    """

    system: list[SystemContentBlockTypeDef] = field(default_factory=list)
    messages: list[MessageTypeDef] = field(default_factory=list)
    contents: list[list[ContentBlockTypeDef]] = field(default_factory=list)
    folded_system: bool = False
    has_tool_blocks: bool = False


class MessageTranslator:
    """Translates one request's ``messages`` list; use :func:`translate_messages`."""

    def __init__(
        self,
        family: ModelFamily,
        *,
        fold_system: bool,
        allow_url_fetch: bool,
        media: Mapping[str, tuple[bytes, str]] | None,
        cache: CacheMarkers,
    ) -> None:
        self.family = family
        self.fold_system = fold_system
        self.allow_url_fetch = allow_url_fetch
        self.media = media or {}
        self.cache = cache
        self.out = ConvertedMessages()
        self._first_turn_index = 0
        self._open_tool_calls: set[str] = set()
        self._document_names = DocumentNames()

    def run(self, messages: object) -> ConvertedMessages:
        if not isinstance(messages, list) or not messages:
            raise invalid("messages must be a non-empty array", param="messages")
        for i, message in enumerate(messages):
            self._message(message, f"messages[{i}]", i)
        turns = self.out.messages
        if not turns:
            raise invalid("messages must contain at least one user message", param="messages")
        if turns[0]["role"] != "user":
            param = f"messages[{self._first_turn_index}]"
            raise invalid(
                f"{param}: the conversation must start with a user message (Bedrock requires it)",
                param=f"{param}.role",
            )
        if self.out.folded_system:
            # Families without a system prompt get the instructions as the opening text of the
            # first user turn, in order, so nothing the caller wrote is lost.
            preface: list[ContentBlockTypeDef] = [{"text": b["text"]} for b in self.out.system if "text" in b]
            self.out.contents[0][:0] = preface
            self.out.system = []
        return self.out

    # -- one message -------------------------------------------------------------------------

    def _message(self, message: object, param: str, index: int) -> None:
        if not isinstance(message, dict):
            raise invalid(f"{param} must be an object", param=param)
        role = message.get("role")
        if role in ("system", "developer"):
            self._system(message, param)
        elif role == "user":
            blocks = self._user_content(message.get("content"), f"{param}.content")
            self.cache.after(blocks, message, param)
            self._append("user", blocks, param, index)
        elif role == "assistant":
            self._assistant(message, param, index)
        elif role == "tool":
            self._tool(message, param, index)
        elif role == "function":
            raise invalid(f"{param}: role 'function' is deprecated; use tool messages", param=f"{param}.role")
        else:
            raise invalid(
                f"{param}.role must be one of system, developer, user, assistant, tool", param=f"{param}.role"
            )

    def _system(self, message: JSONObject, param: str) -> None:
        if not self.family.system_prompt and not self.fold_system:
            raise invalid(
                f"{param}: model family {self.family.name} takes no system prompt "
                "(set drop_unsupported_params to fold it into the first user message)",
                param=f"{param}.role",
            )
        self.out.folded_system = not self.family.system_prompt
        blocks: list[ContentBlockTypeDef] = []
        content = message.get("content")
        if isinstance(content, str):
            if not is_blank(content):
                blocks.append({"text": content})
        elif isinstance(content, list) and content:
            for j, part in enumerate(content):
                part_param = f"{param}.content[{j}]"
                text = _text_part(part, part_param)
                if not is_blank(text):
                    blocks.append({"text": text})
                self.cache.after(blocks, part, part_param)
        else:
            raise invalid(f"{param}.content must be a string or an array of text parts", f"{param}.content")
        self.cache.after(blocks, message, param)
        self.out.system.extend(blocks)

    def _assistant(self, message: JSONObject, param: str, index: int) -> None:
        blocks: list[ContentBlockTypeDef] = []
        content = message.get("content")
        if isinstance(content, str):
            if not is_blank(content):
                blocks.append({"text": content})
        elif isinstance(content, list):
            for j, part in enumerate(content):
                part_param = f"{param}.content[{j}]"
                if isinstance(part, dict) and part.get("type") == "refusal":
                    text = part.get("refusal")
                    if not isinstance(text, str):
                        raise invalid(f"{part_param}.refusal must be a string", param=f"{part_param}.refusal")
                else:
                    text = _text_part(part, part_param)
                if not is_blank(text):
                    blocks.append({"text": text})
                self.cache.after(blocks, part, part_param)
        elif content is not None:
            raise invalid(f"{param}.content must be a string, an array or null", param=f"{param}.content")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None:
            blocks.extend(self._tool_calls(tool_calls, f"{param}.tool_calls"))
        if not any("cachePoint" not in b for b in blocks):
            raise invalid(f"{param} has neither content nor tool_calls", param=f"{param}.content")
        self.cache.after(blocks, message, param)
        self._append("assistant", blocks, param, index)

    def _tool_calls(self, tool_calls: object, param: str) -> list[ContentBlockTypeDef]:
        if not isinstance(tool_calls, list):
            raise invalid(f"{param} must be an array", param=param)
        if tool_calls and not self.family.tools:
            raise invalid(f"{param}: model family {self.family.name} does not support tools", param=param)
        self._open_tool_calls = set()
        blocks: list[ContentBlockTypeDef] = []
        for k, call in enumerate(tool_calls):
            call_param = f"{param}[{k}]"
            if not isinstance(call, dict) or call.get("type", "function") != "function":
                raise invalid(f"{call_param} must be a function tool call", param=call_param)
            call_id = call.get("id")
            if not isinstance(call_id, str) or not TOOL_USE_ID.fullmatch(call_id):
                raise invalid(f"{call_param}.id {TOOL_USE_ID_RULE}", param=f"{call_param}.id")
            function = call.get("function")
            if not isinstance(function, dict):
                raise invalid(f"{call_param}.function must be an object", param=f"{call_param}.function")
            name = function.get("name")
            if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
                raise invalid(
                    f"{call_param}.function.name {TOOL_NAME_RULE}", param=f"{call_param}.function.name"
                )
            arguments = parse_arguments(function.get("arguments"), f"{call_param}.function.arguments")
            blocks.append({"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}})
            self._open_tool_calls.add(call_id)
        self.out.has_tool_blocks = self.out.has_tool_blocks or bool(blocks)
        return blocks

    def _tool(self, message: JSONObject, param: str, index: int) -> None:
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or call_id not in self._open_tool_calls:
            raise invalid(
                f"{param}.tool_call_id must name a tool call of the preceding assistant message",
                param=f"{param}.tool_call_id",
            )
        content = message.get("content")
        result: list[ToolResultContentBlockTypeDef] = []
        after: list[ContentBlockTypeDef] = []
        if isinstance(content, str):
            if not is_blank(content):
                result.append({"text": content})
        elif isinstance(content, list):
            for j, part in enumerate(content):
                part_param = f"{param}.content[{j}]"
                text = _text_part(part, part_param)
                if not is_blank(text):
                    result.append({"text": text})
                # A tool result cannot hold a cache point: it goes right after the result block.
                self.cache.after(after, part, part_param)
        else:
            raise invalid(f"{param}.content must be a string or an array of text parts", f"{param}.content")
        blocks: list[ContentBlockTypeDef] = [
            {"toolResult": {"toolUseId": call_id, "content": result}},
            *after,
        ]
        self.cache.after(blocks, message, param)
        self.out.has_tool_blocks = True
        self._append("user", blocks, param, index)

    # -- user content parts ------------------------------------------------------------------

    def _user_content(self, content: object, param: str) -> list[ContentBlockTypeDef]:
        if isinstance(content, str):
            if is_blank(content):
                raise invalid(f"{param} must not be blank", param=param)
            return [{"text": content}]
        if not isinstance(content, list) or not content:
            raise invalid(f"{param} must be a string or a non-empty array of content parts", param=param)
        blocks: list[ContentBlockTypeDef] = []
        for j, part in enumerate(content):
            part_param = f"{param}[{j}]"
            if not isinstance(part, dict):
                raise invalid(f"{part_param} must be an object", param=part_param)
            kind = part.get("type")
            if kind == "text":
                text = _text_part(part, part_param)
                if not is_blank(text):
                    blocks.append({"text": text})
            elif kind == "image_url":
                blocks.append({"image": self._image(part.get("image_url"), f"{part_param}.image_url")})
            elif kind == "file":
                blocks.append({"document": self._document(part.get("file"), f"{part_param}.file")})
            elif kind == "input_audio":
                raise invalid(f"{part_param}: audio input is not supported on Bedrock", param=part_param)
            else:
                raise invalid(
                    f"{part_param}.type must be text, image_url or file", param=f"{part_param}.type"
                )
            self.cache.after(blocks, part, part_param)
        if not any("cachePoint" not in b for b in blocks):
            raise invalid(f"{param} must not be empty", param=param)
        return blocks

    def _image(self, image_url: object, param: str) -> ImageBlockTypeDef:
        if not self.family.images:
            raise invalid(f"{param}: model family {self.family.name} does not accept images", param=param)
        url = image_url.get("url") if isinstance(image_url, dict) else None
        if not isinstance(url, str) or not url:
            raise invalid(f"{param}.url must be a string", param=f"{param}.url")
        if url.startswith("data:"):
            data, media_type = decode_data_url(url, f"{param}.url")
        elif self.allow_url_fetch:
            data, media_type = fetched_media(self.media, url, f"{param}.url", "image")
        else:
            raise invalid(
                f"{param}.url: remote image URLs are not fetched by this gateway; send a base64 data: URL",
                param=f"{param}.url",
            )
        return image(data, media_type, f"{param}.url")

    def _document(self, file: object, param: str) -> DocumentBlockTypeDef:
        if not self.family.documents:
            raise invalid(f"{param}: model family {self.family.name} does not accept documents", param=param)
        if not isinstance(file, dict):
            raise invalid(f"{param} must be an object", param=param)
        file_data = file.get("file_data")
        if not isinstance(file_data, str):
            raise invalid(
                f"{param}.file_data (a base64 data: URL) is required; file_id is not supported", param
            )
        data, media_type = decode_data_url(file_data, f"{param}.file_data")
        filename = file.get("filename")
        filename = filename if isinstance(filename, str) else ""
        doc_format = document_format(media_type, filename)
        if doc_format is None:
            raise invalid(f"{param}: unsupported document type {media_type!r}", param=f"{param}.file_data")
        return {
            "format": doc_format,
            "name": self._document_names.name(filename.rsplit(".", 1)[0]),
            "source": {"bytes": data},
        }

    def _append(
        self, role: ConversationRoleType, blocks: list[ContentBlockTypeDef], param: str, index: int
    ) -> None:
        turns = self.out.messages
        if turns and turns[-1]["role"] == role:
            self.out.contents[-1].extend(blocks)
        else:
            if not turns:
                self._first_turn_index = index
            turns.append({"role": role, "content": blocks})
            self.out.contents.append(blocks)


def _text_part(part: object, param: str) -> str:
    if not isinstance(part, dict) or part.get("type") != "text":
        raise invalid(f"{param} must be a text part", param=param)
    text = part.get("text")
    if not isinstance(text, str):
        raise invalid(f"{param}.text must be a string", param=f"{param}.text")
    return text


def parse_arguments(arguments: object, param: str) -> JSONObject:
    """A tool call's ``arguments`` JSON string as the ``toolUse.input`` object Bedrock wants."""
    if not isinstance(arguments, str):
        raise invalid(f"{param} must be a JSON string", param=param)
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise invalid(f"{param} is not valid JSON", param=param) from None
    if not isinstance(value, dict):
        raise invalid(f"{param} must encode a JSON object", param=param)
    return value


def translate_messages(
    messages: object,
    family: ModelFamily,
    *,
    fold_system: bool,
    allow_url_fetch: bool,
    media: Mapping[str, tuple[bytes, str]] | None,
    cache: CacheMarkers,
) -> ConvertedMessages:
    """Translate and validate an OpenAI ``messages`` array for Converse."""
    translator = MessageTranslator(
        family, fold_system=fold_system, allow_url_fetch=allow_url_fetch, media=media, cache=cache
    )
    return translator.run(messages)
