"""OpenAI chat ⇄ InvokeModel native bodies, for families Converse does not serve well.

Titan Text takes one flat prompt (``inputText``), so the conversation is written as a
``User: …`` / ``Bot: …`` transcript, system text first as a preamble; Llama 3 takes its own
header-token prompt format (:func:`llama3_prompt`). Text is all these bodies can carry: tools,
images, documents, structured output and reasoning are refused with a 400 before Bedrock is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ...errors import invalid
from ...routing.families import ModelFamily, NativeBody
from ..bedrock import DROPPED_CACHE_HEADER
from ..types import InvokeCall, TokenUsage
from .messages import CacheMarkers
from .params import (
    DROPPED_PARAMS_HEADER,
    JSON_OBJECT_INSTRUCTION,
    OpenAIOptions,
    read_chat_params,
    require_object,
)
from .response import openai_usage

if TYPE_CHECKING:
    from ..native_shapes import (
        LlamaRequest,
        LlamaResponse,
        NativeChatRequest,
        TitanTextConfig,
        TitanTextResponse,
        TitanTextResult,
    )
    from ..types import JSONObject
    from .shapes import AssistantMessage, ChatCompletion

Turn = tuple[str, str]  # (system | user | assistant, text)

# Titan accepts only these stop sequences; "User:" also keeps it from writing the caller's next turn.
TITAN_STOP_SEQUENCES = frozenset({"|", "User:"})
TITAN_FINISH_REASONS = {
    "FINISH": "stop",
    "STOP_CRITERIA_MET": "stop",
    "LENGTH": "length",
    "CONTENT_FILTERED": "content_filter",
}
LLAMA_FINISH_REASONS = {"stop": "stop", "length": "length"}
_NATIVE_CHAT = (NativeBody.TITAN_TEXT, NativeBody.LLAMA)


def titan_transcript(turns: list[Turn]) -> str:
    """Titan's ``inputText``: system preamble, then ``User:``/``Bot:`` lines, ending with ``Bot:``."""
    preamble = "\n\n".join(text for role, text in turns if role == "system")
    lines = [f"{'User' if role == 'user' else 'Bot'}: {text}" for role, text in turns if role != "system"]
    if turns and turns[-1][0] == "user":
        lines.append("Bot:")
    transcript = "\n".join(lines)
    return f"{preamble}\n\n{transcript}" if preamble else transcript


def llama3_prompt(turns: list[Turn]) -> str:
    """Meta Llama 3's prompt format; ends with an open assistant header unless the last turn is a prefill."""
    prompt = ["<|begin_of_text|>"]
    for role, text in turns:
        prompt.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}")
        prompt.append("<|eot_id|>")
    if turns and turns[-1][0] == "assistant":
        prompt.pop()  # an assistant prefill is continued, not closed
    else:
        prompt.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(prompt)


def openai_to_invoke(body: Any, family: ModelFamily, options: OpenAIOptions) -> InvokeCall:
    """Translate and validate an OpenAI chat body into the family's native InvokeModel body."""
    if family.native_body not in _NATIVE_CHAT:
        raise invalid(f"model family {family.name} has no native chat body", param="model")
    body = require_object(body)
    params = read_chat_params(body, options)
    _refuse_features(body, family)
    cache = CacheMarkers(enabled=False)
    turns = _turns(body.get("messages"), cache)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        role, text = turns[-1]
        if role == "user":
            turns[-1] = (role, f"{text}\n\n{JSON_OBJECT_INSTRUCTION}")
        else:
            turns.append(("user", JSON_OBJECT_INSTRUCTION))
    notes: dict[str, str] = {}
    if params.dropped:
        notes[DROPPED_PARAMS_HEADER] = ",".join(params.dropped)
    if cache.requested:
        notes[DROPPED_CACHE_HEADER] = str(cache.requested)

    native: NativeChatRequest
    if family.native_body == NativeBody.TITAN_TEXT:
        for i, stop in enumerate(params.stop):
            if stop not in TITAN_STOP_SEQUENCES:
                raise invalid(
                    "Titan Text accepts only the stop sequences '|' and 'User:'", param=f"stop[{i}]"
                )
        config: TitanTextConfig = {"stopSequences": list(params.stop or ("User:",))}
        if params.max_tokens is not None:
            config["maxTokenCount"] = params.max_tokens
        if params.temperature is not None:
            config["temperature"] = min(params.temperature, 1.0)
        if params.top_p is not None:
            config["topP"] = params.top_p
        native = {"inputText": titan_transcript(turns), "textGenerationConfig": config}
    else:
        if params.stop:
            raise invalid("Llama's native body takes no stop sequences", param="stop")
        llama: LlamaRequest = {"prompt": llama3_prompt(turns)}
        if params.max_tokens is not None:
            llama["max_gen_len"] = params.max_tokens
        if params.temperature is not None:
            llama["temperature"] = min(params.temperature, 1.0)
        if params.top_p is not None:
            llama["top_p"] = params.top_p
        native = llama
    return InvokeCall(body=native, stream=params.stream, stop_sequences=params.stop, notes=notes)


def _refuse_features(body: JSONObject, family: ModelFamily) -> None:
    if body.get("tools"):
        raise invalid(f"model family {family.name} takes no tools on its native API", param="tools")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise invalid(f"model family {family.name} takes no tools on its native API", param="tool_choice")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object"):
            raise invalid(
                f"response_format must be text or json_object for model family {family.name}",
                param="response_format.type",
            )
    if body.get("reasoning_effort") not in (None, "none"):
        raise invalid(f"model family {family.name} does not reason", param="reasoning_effort")


def _turns(messages: object, cache: CacheMarkers) -> list[Turn]:
    if not isinstance(messages, list) or not messages:
        raise invalid("messages must be a non-empty array", param="messages")
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(f"{param} must be an object", param=param)
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise invalid(f"{param}.role must be system, developer, user or assistant here", f"{param}.role")
        if message.get("tool_calls"):
            raise invalid(f"{param}.tool_calls: this model takes no tools", param=f"{param}.tool_calls")
        text = _text(message.get("content"), f"{param}.content", cache)
        cache.after([], message, param)
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{text}")
        else:
            turns.append((role, text))
    if not any(role == "user" for role, _ in turns):
        raise invalid("messages must contain a user message", param="messages")
    return turns


def _text(content: object, param: str, cache: CacheMarkers) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{param} must be a string or an array of text parts", param=param)
    texts = []
    for j, part in enumerate(content):
        part_param = f"{param}[{j}]"
        if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
            raise invalid(f"{part_param}: this model accepts text only", param=part_param)
        text = part.get(part["type"])
        if not isinstance(text, str):
            raise invalid(f"{part_param}.{part['type']} must be a string", param=part_param)
        texts.append(text)
        cache.after([], part, part_param)
    return "\n".join(texts)


def native_finish_reason(family: ModelFamily, reason: str | None) -> str:
    """OpenAI's ``finish_reason`` for a native completion/stop reason."""
    table = TITAN_FINISH_REASONS if family.native_body == NativeBody.TITAN_TEXT else LLAMA_FINISH_REASONS
    return table.get(reason or "", "stop")


def invoke_to_openai(
    response: JSONObject,
    *,
    family: ModelFamily,
    model: str,
    call: InvokeCall,
    completion_id: str,
    created: int,
    input_tokens_header: int | None = None,
) -> ChatCompletion:
    """Translate a native InvokeModel chat response (the decoded body) into an OpenAI ``chat.completion``."""
    reason: str | None
    if family.native_body == NativeBody.TITAN_TEXT:
        titan = cast("TitanTextResponse", response)  # the family decides the body's shape
        empty: TitanTextResult = {}
        result = (titan.get("results") or [empty])[0]
        text = result.get("outputText") or ""
        reason = result.get("completionReason")
        usage = TokenUsage(int(titan.get("inputTextTokenCount") or 0), int(result.get("tokenCount") or 0))
    else:
        llama = cast("LlamaResponse", response)
        text = llama.get("generation") or ""
        reason = llama.get("stop_reason")
        usage = TokenUsage(
            int(llama.get("prompt_token_count") or 0), int(llama.get("generation_token_count") or 0)
        )
    if not usage.input_tokens and input_tokens_header is not None:
        usage.input_tokens = input_tokens_header
    message: AssistantMessage = {"role": "assistant", "content": text.lstrip(), "refusal": None}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": native_finish_reason(family, reason),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage),
        "system_fingerprint": None,
    }
