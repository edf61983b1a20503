"""OpenAI Responses request → Converse call, through the chat-completions translator.

The Responses API is chat completions with items instead of messages: the request is lowered to the
chat-completions body that means the same thing and handed to ``openai_to_converse``, so tools,
structured output, reasoning effort, content parts and every Bedrock rule are applied by the code
that already owns them. Only what chat completions cannot say is done here: items become messages,
``reasoning`` items become Converse reasoning blocks again (unsealed), and error paths name the
caller's own fields (``input[3]``, not the lowered ``messages[2]``). See ``docs/responses.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ...errors import GatewayError, invalid
from ...routing.families import ModelFamily
from ..bedrock import LOWERED_HEADER, settle_thinking, unique_urls
from ..openai.messages import is_remote_url
from ..openai.params import DROPPED_PARAMS_HEADER, OpenAIOptions
from ..openai.request import openai_to_converse
from ..types import ConverseCall
from .sealing import ReasoningSeal

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ContentBlockTypeDef, MessageUnionTypeDef

    from ..types import JSONObject, JSONValue
    from .shapes import (
        ChatAssistantMessage,
        ChatBody,
        ChatFile,
        ChatMessage,
        ChatPart,
        ChatTextPart,
        ChatTool,
        ChatToolCall,
        Echo,
        InputItem,
    )

IGNORED_PARAMS_HEADER = "x-bedrock-mw-ignored-params"
ENCRYPTED_REASONING = "reasoning.encrypted_content"

# Top-level fields this translator reads or accepts as advisory (docs/responses.md); others are a
# newer client's and are dropped and named (or refused when the host asks for strictness).
KNOWN_FIELDS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "temperature", "top_p", "reasoning", "text", "metadata", "user", "store", "previous_response_id",
    "include", "truncation", "stream", "stream_options", "service_tier", "prompt_cache_key",
    "safety_identifier", "background", "max_tool_calls", "top_logprobs", "prompt", "conversation",
    "client_metadata", "prompt_cache_retention",
})  # fmt: skip
_REFUSED_FIELDS = {
    "background": "background responses are not offered by this gateway; send background: false",
    "prompt": "stored prompt templates live at OpenAI, not on Bedrock; send the prompt as input",
    "conversation": "conversation objects are not offered; use previous_response_id or send the items",
}
_CHAT_PARAM = re.compile(r"messages\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class ResponsesOptions:
    """Per-deployment choices for the Responses dialect."""

    openai: OpenAIOptions = field(default_factory=OpenAIOptions)
    reject_unknown_fields: bool = False


@dataclass(slots=True)
class ResponsesCall:
    """A translated Responses request: the Converse call plus what the answer must echo or keep."""

    converse: ConverseCall
    items: list[InputItem]  # this request's input as items (what GET .../input_items lists)
    echo: Echo  # request fields a Response object repeats
    include_encrypted: bool = False
    store: bool = True
    notes: dict[str, str] = field(default_factory=dict)


def input_items(body: Mapping[str, JSONValue]) -> list[InputItem]:
    """The ``input`` as a list of items (a string is one user message); validated shallowly."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise invalid("input must be a string or an array of items", param="input")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"input[{i}] must be an object", param=f"input[{i}]")
    return [_with_type(item) for item in value]


def image_urls(body: Mapping[str, JSONValue]) -> list[str]:
    """The remote (non-``data:``) image URLs of a request, for the app to fetch when it allows it."""
    return unique_urls(_remote_image_urls(body))


def _remote_image_urls(body: Mapping[str, JSONValue]) -> Iterator[str]:
    value = body.get("input") if isinstance(body, Mapping) else None
    for item in value if isinstance(value, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "input_image":
                url = part.get("image_url")
                if is_remote_url(url):
                    yield url


def _with_type(item: InputItem) -> InputItem:
    # An "easy input message" ({"role", "content"}) is a message item without its type.
    return item if "type" in item else {"type": "message", **item}


def responses_to_converse(
    body: JSONValue,
    family: ModelFamily,
    options: ResponsesOptions,
    seal: ReasoningSeal,
    *,
    history: Sequence[InputItem] | None = None,
    media: Mapping[str, tuple[bytes, str]] | None = None,
) -> ResponsesCall:
    """Translate and validate a Responses body; ``history`` are the items of ``previous_response_id``."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    ignored = _unknown_fields(body, options)
    dropped: list[str] = []
    items = input_items(body)
    lowered = _Lowering(seal)
    lowered.instructions(body.get("instructions"))
    lowered.items([_with_type(item) for item in history or ()], "previous_response_id")
    lowered.items(items, "input")
    chat: ChatBody = {"messages": lowered.messages}
    _copy_sampling(body, chat)
    _tools(body, chat)
    if body.get("parallel_tool_calls") is False:
        dropped.append("parallel_tool_calls")  # Converse has no switch; the model may still call several
    if body.get("truncation") not in (None, "disabled"):
        if body.get("truncation") != "auto":
            raise invalid("truncation must be auto or disabled", param="truncation")
        dropped.append("truncation")
    _text_format(body.get("text"), chat)
    _reasoning(body.get("reasoning"), chat)
    include = _include(body.get("include"))
    store = body.get("store", True)
    if not isinstance(store, bool):
        raise invalid("store must be a boolean", param="store")
    try:
        call = openai_to_converse(chat, family, options.openai, media=media, restores_thinking=True)
    except GatewayError as err:
        raise _in_caller_terms(err, lowered.sources) from None
    call.request["messages"] = lowered.restore_reasoning(call.request["messages"])
    notes = dict(call.notes)
    lowered_notes = [f"tool-output-images:{lowered.tool_images}"] if lowered.tool_images else []
    if thinking_off := settle_thinking(call.request):
        lowered_notes.append(thinking_off)
    if lowered_notes:
        notes[LOWERED_HEADER] = ",".join(lowered_notes)
    if dropped:
        prior = notes.get(DROPPED_PARAMS_HEADER)
        notes[DROPPED_PARAMS_HEADER] = ",".join([*(prior.split(",") if prior else []), *dropped])
    if ignored:
        notes[IGNORED_PARAMS_HEADER] = ",".join(ignored)
    call.notes = notes
    return ResponsesCall(
        converse=call,
        items=items,
        echo=_echo(body),
        include_encrypted=ENCRYPTED_REASONING in include,
        store=store,
        notes=notes,
    )


def _unknown_fields(body: JSONObject, options: ResponsesOptions) -> list[str]:
    unknown = [name for name in body if name not in KNOWN_FIELDS]
    if unknown and options.reject_unknown_fields:
        raise invalid(f"unknown field(s): {', '.join(unknown)}", param=unknown[0])
    for name, reason in _REFUSED_FIELDS.items():
        if body.get(name) not in (None, False):
            raise invalid(f"{name}: {reason}", param=name)
    return unknown


# Responses fields passed on as the chat-completions fields of the same meaning.
_SamplingParam = Literal[
    "max_completion_tokens", "temperature", "top_p", "metadata", "service_tier", "stream"
]  # fmt: skip
_SAMPLING: tuple[tuple[str, _SamplingParam], ...] = (
    ("max_output_tokens", "max_completion_tokens"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("metadata", "metadata"),
    ("service_tier", "service_tier"),
    ("stream", "stream"),
)


def _copy_sampling(body: JSONObject, chat: ChatBody) -> None:
    for ours, theirs in _SAMPLING:
        if body.get(ours) is not None:
            chat[theirs] = body[ours]


def _tools(body: JSONObject, chat: ChatBody) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools must be an array", param="tools")
        chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None or isinstance(choice, str):
        if choice is not None:
            chat["tool_choice"] = choice
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind != "function":
        raise invalid(
            f"tool_choice of type {kind!r} is not supported on Bedrock; use none, auto, required "
            "or a function choice",
            param="tool_choice",
        )
    assert isinstance(choice, dict)  # for mypy: kind was read from it
    chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}


def _tool(tool: object, param: str) -> ChatTool:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise invalid(
            f"{param}: tools of type {kind!r} are not supported on Bedrock; only function tools are",
            param=f"{param}.type",
        )
    assert isinstance(tool, dict)
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _text_format(text: object, chat: ChatBody) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise invalid("text must be an object", param="text")
    spec = text.get("format")
    if spec is None:
        return
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text" or kind == "json_object":
        chat["response_format"] = {"type": kind}
    elif kind == "json_schema":
        assert isinstance(spec, dict)
        schema = {k: spec[k] for k in ("name", "schema", "description", "strict") if k in spec}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    else:
        raise invalid("text.format.type must be text, json_object or json_schema", "text.format.type")


def _reasoning(reasoning: object, chat: ChatBody) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise invalid("reasoning must be an object", param="reasoning")
    effort = reasoning.get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort


def _include(include: object) -> frozenset[str]:
    if include is None:
        return frozenset()
    if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
        raise invalid("include must be an array of strings", param="include")
    return frozenset(include)


def _echo(body: JSONObject) -> Echo:
    reasoning = _object(body.get("reasoning"))
    text = _object(body.get("text"))
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
    }


def _object(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


class _Lowering:
    """Items → chat messages, remembering which item each message came from and its reasoning."""

    def __init__(self, seal: ReasoningSeal) -> None:
        self.seal = seal
        self.messages: list[ChatMessage] = []
        self.sources: list[str] = []  # the caller's path of each chat message
        self._assistant: ChatAssistantMessage | None = None  # the assistant message being grown
        self._reasoning: list[ContentBlockTypeDef] = []  # blocks waiting for the next assistant turn
        # Reasoning blocks per assistant turn (turns counted as Converse will merge them).
        self.turn_reasoning: list[list[ContentBlockTypeDef]] = []
        self._last_role: str | None = None
        # Images from tool outputs: chat tool messages hold text only, and Claude wants every tool
        # result first in its user turn, so they follow the run of tool results as user content.
        self._tool_images: list[tuple[ChatPart, str]] = []
        self.tool_images = 0

    def instructions(self, instructions: object) -> None:
        if instructions is None:
            return
        if not isinstance(instructions, str):
            raise invalid("instructions must be a string", param="instructions")
        if instructions:
            self._push({"role": "system", "content": instructions}, "instructions")

    def items(self, items: Sequence[InputItem], where: str) -> None:
        for i, item in enumerate(items):
            self._item(item, f"{where}[{i}]")
        self._flush_tool_images()
        self._assistant = None

    def _item(self, item: InputItem, param: str) -> None:
        kind = item.get("type")
        if kind != "function_call_output":
            self._flush_tool_images()
        if kind == "message":
            self._message(item, param)
        elif kind == "function_call":
            self._function_call(item, param)
        elif kind == "function_call_output":
            self._assistant = None
            call_id = item.get("call_id")
            content, images = _tool_output(item.get("output"), f"{param}.output")
            if images:
                self._tool_images.extend((image, param) for image in images)
                note = f"[the tool returned {len(images)} image(s), attached after the tool results]"
                content = [*content, {"type": "text", "text": note}]
            self._push({"role": "tool", "tool_call_id": call_id, "content": content}, param)
        elif kind == "reasoning":
            self._reasoning_item(item, param)
        else:
            raise invalid(
                f"{param}: input items of type {kind!r} are not supported on Bedrock "
                "(message, function_call, function_call_output and reasoning are)",
                param=f"{param}.type",
            )

    def _flush_tool_images(self) -> None:
        if self._tool_images:
            images, source = [image for image, _ in self._tool_images], self._tool_images[0][1]
            self.tool_images += len(images)
            self._tool_images = []
            self._push({"role": "user", "content": images}, source)

    def _message(self, item: InputItem, param: str) -> None:
        role = item.get("role")
        content = item.get("content")
        if role == "assistant":
            text = _assistant_text(content, f"{param}.content")
            message = self._assistant_message(param)
            if text:
                message["content"] = (message.get("content") or "") + text
            return
        self._assistant = None
        if role not in ("user", "system", "developer"):
            raise invalid(f"{param}.role must be user, assistant, system or developer", f"{param}.role")
        if isinstance(content, list):
            content = [_input_part(part, f"{param}.content[{j}]") for j, part in enumerate(content)]
        self._push({"role": role, "content": content}, param)

    def _function_call(self, item: InputItem, param: str) -> None:
        message = self._assistant_message(param)
        call: ChatToolCall = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments")},
        }
        message.setdefault("tool_calls", []).append(call)

    def _reasoning_item(self, item: InputItem, param: str) -> None:
        sealed = item.get("encrypted_content")
        if sealed is None:
            # Without the sealed blocks the thinking cannot be replayed (its signature is missing);
            # the summary alone is not what the model wrote, so the item is left out.
            return
        self._reasoning.extend(self.seal.open(sealed, f"{param}.encrypted_content"))

    def _assistant_message(self, param: str) -> ChatAssistantMessage:
        if self._assistant is None:
            self._assistant = {"role": "assistant", "content": None}
            self._push(self._assistant, param)
        return self._assistant

    def _push(self, message: ChatMessage, param: str) -> None:
        role = message["role"]
        if role == "assistant":
            if self._last_role != "assistant":
                self.turn_reasoning.append([])
            self.turn_reasoning[-1].extend(self._reasoning)
            self._reasoning = []
            self._last_role = "assistant"
        elif role in ("user", "tool"):
            self._last_role = "user"
        self.messages.append(message)
        self.sources.append(param)

    def restore_reasoning(self, turns: Sequence[MessageUnionTypeDef]) -> list[MessageUnionTypeDef]:
        """``turns`` with the unsealed reasoning blocks back at the start of their assistant turns.

        A turn gaining blocks is a new message (botocore types content as read-only); others are kept.
        """
        reasoning = iter(self.turn_reasoning)
        out: list[MessageUnionTypeDef] = []
        for turn in turns:
            blocks = next(reasoning, None) if turn["role"] == "assistant" else None
            out.append({"role": turn["role"], "content": [*blocks, *turn["content"]]} if blocks else turn)
        return out


def _assistant_text(content: object, param: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{param} must be a string or an array of output_text parts", param=param)
    texts: list[object] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text", "text"):
            assert isinstance(part, dict)
            texts.append(part.get("text"))
        elif kind == "refusal":
            assert isinstance(part, dict)
            texts.append(part.get("refusal"))
        else:
            raise invalid(f"{param}[{j}].type must be output_text or refusal", param=f"{param}[{j}].type")
        if not isinstance(texts[-1], str):
            raise invalid(f"{param}[{j}] must hold a string", param=f"{param}[{j}]")
    return "".join(str(text) for text in texts)


def _input_part(part: object, param: str) -> ChatPart:
    """A Responses input content part as the chat content part that means the same."""
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(part, dict):
        raise invalid(f"{param} must be an object", param=param)
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise invalid(f"{param}.image_url is required (file_id is not supported)", f"{param}.image_url")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str):
            raise invalid(
                f"{param}.file_data (a base64 data: URL) is required; file_id and file_url are not supported",
                param=f"{param}.file_data",
            )
        file: ChatFile = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise invalid(f"{param}.type must be input_text, input_image or input_file", param=f"{param}.type")


def _tool_output(output: object, param: str) -> tuple[list[ChatTextPart], list[ChatPart]]:
    """A function_call_output's text parts (for the tool result) and image parts (to follow it)."""
    if isinstance(output, str):
        return [{"type": "text", "text": output}], []
    if not isinstance(output, list):
        raise invalid(f"{param} must be a string or an array of input_text / input_image parts", param)
    texts: list[ChatTextPart] = []
    images: list[ChatPart] = []
    for j, part in enumerate(output):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            assert isinstance(part, dict)
            texts.append({"type": "text", "text": part.get("text")})
        elif kind == "input_image":
            images.append(_input_part(part, f"{param}[{j}]"))
        else:
            raise invalid(f"{param}[{j}].type must be input_text or input_image", f"{param}[{j}].type")
    return texts, images


# -- error paths in the caller's terms --------------------------------------------------------
_RENAMES = (
    ("max_completion_tokens", "max_output_tokens"),
    ("response_format.json_schema", "text.format"),
    ("response_format", "text.format"),
    ("reasoning_effort", "reasoning.effort"),
    (".function.", "."),
    ("tool_calls", "function_call"),
    ("tool_call_id", "call_id"),
)


def _in_caller_terms(err: GatewayError, sources: list[str]) -> GatewayError:
    """The chat translator's error, with its paths rewritten to the Responses fields they came from."""

    def rename(text: str) -> str:
        text = _CHAT_PARAM.sub(lambda m: _source(sources, int(m.group(1))), text)
        for old, new in _RENAMES:
            text = text.replace(old, new)
        return text

    err.message = rename(err.message)
    if err.param is not None:
        err.param = rename(err.param)
    return err


def _source(sources: list[str], index: int) -> str:
    return sources[index] if 0 <= index < len(sources) else f"input[{index}]"
