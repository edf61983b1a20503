"""Emulated Bedrock Guardrails: deterministic word and regex policies, traces, ApplyGuardrail, an IAM rule.

A guardrail here has two policies a test can predict exactly:

* a word list: a listed word or phrase (case-insensitive, whole words) in the checked text blocks it,
  and the answer becomes the guardrail's blocked message with ``stopReason: guardrail_intervened``;
* named regexes (``{"EMAIL": "[^ @]+@[^ @]+"}``): matches in the model's output are masked as
  ``{EMAIL}``, as Bedrock's sensitive-information filter anonymises.

``check_input`` / ``check_output`` switch the word list per side (Bedrock's inputEnabled/outputEnabled).
Converse checks the last turn's user text before the model and the answer's text after it; in a
stream with ``streamProcessingMode: async`` nothing is masked and a block arrives after the text was
already sent (Bedrock documents both). The trace has Bedrock's shapes (GuardrailTraceAssessment,
GuardrailAssessment). With ``require_guardrail`` on, every model call without a guardrail is refused
with ``AccessDeniedException``, as an IAM policy on ``bedrock:GuardrailIdentifier`` would.

InvokeModel(WithResponseStream) names the guardrail in headers and tunes it in the body member
``amazon-bedrock-guardrailConfig`` (``streamProcessingMode: SYNCHRONOUS | ASYNCHRONOUS``, ``tagSuffix``),
which Bedrock takes off before the model sees the body and refuses without a guardrail header. The
answer keeps the model's own stop reason and says ``amazon-bedrock-guardrailAction`` (``INTERVENED`` /
``NONE``), with ``amazon-bedrock-trace`` when tracing: in the body, and in a stream on its last chunk
(``message_stop``, next to the invocation metrics); docs/emulator.md says which parts of that AWS
documents and which are modelled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import orjson

from .credentials import EMULATOR_ACCOUNT_ID
from .errors import BedrockError, validation_error
from .responder import Answer

Json = dict[str, Any]
DEFAULT_BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."
_ID = re.compile(r"^([a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/([a-z0-9]+))$")
_VERSION = re.compile(r"^([1-9][0-9]{0,7}|DRAFT)$")
_TRACES = {"enabled", "disabled", "enabled_full"}
_MODES = {"sync", "async"}
ACTION_FIELD = "amazon-bedrock-guardrailAction"
TRACE_FIELD = "amazon-bedrock-trace"
CONFIG_FIELD = "amazon-bedrock-guardrailConfig"
_INVOKE_MODES = {"SYNCHRONOUS": "sync", "ASYNCHRONOUS": "async"}
_INVOKE_CONFIG_FIELDS = frozenset({"streamProcessingMode", "tagSuffix"})
IAM_DENIED = (
    "User: arn:aws:iam::{account}:user/emulator is not authorized to perform: bedrock:{action} on "
    "resource: arn:aws:bedrock:{region}::foundation-model/{model} with an explicit deny in an "
    "identity-based policy"
)


@dataclass(frozen=True)
class EmulatedGuardrail:
    """One guardrail (all of its versions): a blocked word list and regexes to mask."""

    identifier: str
    blocked_words: tuple[str, ...] = ()
    mask_regexes: Mapping[str, str] = field(default_factory=dict)
    check_input: bool = True
    check_output: bool = True
    blocked_input_message: str = DEFAULT_BLOCKED_MESSAGE
    blocked_output_message: str = DEFAULT_BLOCKED_MESSAGE

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmulatedGuardrail:
        """Build from the control API's JSON (the field names of this class)."""
        identifier = data.get("identifier")
        if not isinstance(identifier, str) or not re.match(r"^[a-z0-9]+$", identifier):
            raise ValueError("identifier must be lowercase letters and digits")
        words = data.get("blocked_words", [])
        regexes = data.get("mask_regexes", {})
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError("blocked_words must be a list of non-empty strings")
        if not isinstance(regexes, dict) or not all(isinstance(v, str) for v in regexes.values()):
            raise ValueError("mask_regexes must map names to regex strings")
        for pattern in regexes.values():
            re.compile(pattern)
        return cls(
            identifier,
            tuple(words),
            dict(regexes),
            bool(data.get("check_input", True)),
            bool(data.get("check_output", True)),
            str(data.get("blocked_input_message", DEFAULT_BLOCKED_MESSAGE)),
            str(data.get("blocked_output_message", DEFAULT_BLOCKED_MESSAGE)),
        )

    def to_json(self) -> Json:
        return {
            "identifier": self.identifier,
            "blocked_words": list(self.blocked_words),
            "mask_regexes": dict(self.mask_regexes),
            "check_input": self.check_input,
            "check_output": self.check_output,
            "blocked_input_message": self.blocked_input_message,
            "blocked_output_message": self.blocked_output_message,
        }


@dataclass
class GuardrailBook:
    """The emulator's guardrails, and the IAM-style rule that demands one on every model call."""

    guardrails: dict[str, EmulatedGuardrail] = field(default_factory=dict)
    require_guardrail: bool = False

    def add(self, guardrail: EmulatedGuardrail) -> EmulatedGuardrail:
        self.guardrails[guardrail.identifier] = guardrail
        return guardrail

    def clear(self) -> None:
        self.guardrails.clear()
        self.require_guardrail = False

    def to_json(self) -> Json:
        return {
            "guardrails": [g.to_json() for g in self.guardrails.values()],
            "require_guardrail": self.require_guardrail,
        }

    def lookup(self, identifier: Any, version: Any) -> EmulatedGuardrail:
        """The guardrail a call names, or Bedrock's refusal of the identifier or version."""
        match = _ID.match(identifier) if isinstance(identifier, str) else None
        if match is None or not isinstance(version, str) or not _VERSION.match(version):
            raise validation_error("The guardrail identifier or version provided is invalid.")
        guardrail = self.guardrails.get(match.group(3) or match.group(1))
        if guardrail is None:
            raise BedrockError(
                "ResourceNotFoundException", "The guardrail identifier or version provided does not exist."
            )
        return guardrail


@dataclass(frozen=True)
class ActiveGuardrail:
    """The guardrail one call carries, with the call's trace and stream settings."""

    guardrail: EmulatedGuardrail
    version: str
    trace: str = "disabled"
    stream_mode: str = "sync"


# -- assessments ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assessment:
    """What one guardrail pass found in some texts, and the texts it lets through."""

    blocked: bool
    masked: bool
    outputs: tuple[str, ...]
    detail: Json

    @property
    def intervened(self) -> bool:
        return self.blocked or self.masked


def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)", re.IGNORECASE)


def assess(
    guardrail: EmulatedGuardrail, texts: Iterable[str], *, words: bool, mask: bool, full: bool
) -> Assessment:
    """Run the word list (``words``) and the masking regexes (``mask``) over ``texts``."""
    texts = tuple(texts)
    joined = "\n".join(texts)
    custom: list[Json] = []
    blocked = False
    if words:
        for word in guardrail.blocked_words:
            found = _word_pattern(word).search(joined)
            if found is not None:
                blocked = True
                custom.append({"match": found.group(0), "action": "BLOCKED", "detected": True})
            elif full:
                custom.append({"match": word, "action": "NONE", "detected": False})
    regexes: list[Json] = []
    outputs = list(texts)
    masked = False
    if mask:
        for name, pattern in guardrail.mask_regexes.items():
            compiled = re.compile(pattern)
            hits = [m.group(0) for t in outputs for m in compiled.finditer(t)]
            for hit in hits:
                regexes.append(
                    {"name": name, "match": hit, "regex": pattern, "action": "ANONYMIZED", "detected": True}
                )
            if hits:
                masked = True
                outputs = [compiled.sub("{" + name + "}", t) for t in outputs]
            elif full:
                regexes.append({"name": name, "regex": pattern, "action": "NONE", "detected": False})
    characters = len(joined)
    detail: Json = {
        "invocationMetrics": {
            "guardrailProcessingLatency": 1,
            "usage": _usage(bool(words and guardrail.blocked_words), bool(mask and guardrail.mask_regexes)),
            "guardrailCoverage": {"textCharacters": {"guarded": characters, "total": characters}},
        }
    }
    if custom or (words and full):
        detail["wordPolicy"] = {"customWords": custom, "managedWordLists": []}
    if regexes or (mask and full and guardrail.mask_regexes):
        detail["sensitiveInformationPolicy"] = {"piiEntities": [], "regexes": regexes}
    return Assessment(blocked, masked and not blocked, tuple(outputs), detail)


def _usage(words: bool, sensitive: bool) -> Json:
    return {
        "topicPolicyUnits": 0,
        "contentPolicyUnits": 0,
        "wordPolicyUnits": 1 if words else 0,
        "sensitiveInformationPolicyUnits": 1 if sensitive else 0,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
    }


# -- which guardrail a call carries --------------------------------------------------------------
def _denied(action: str, region: str, model_id: str) -> BedrockError:
    message = IAM_DENIED.format(account=EMULATOR_ACCOUNT_ID, action=action, region=region, model=model_id)
    return BedrockError("AccessDeniedException", message)


_ACTIONS = {
    "converse": "InvokeModel",
    "converse-stream": "InvokeModelWithResponseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}


def guardrail_of_call(
    book: GuardrailBook,
    operation: str,
    body: Any,
    headers: Iterable[tuple[str, str]],
    region: str,
    model_id: str,
) -> ActiveGuardrail | None:
    """The guardrail a model call carries (Converse ``guardrailConfig`` or InvokeModel headers)."""
    if operation not in _ACTIONS:
        return None
    active: ActiveGuardrail | None = None
    if operation.startswith("converse"):
        config = body.get("guardrailConfig") if isinstance(body, dict) else None
        if config is not None:
            active = _from_converse(book, config, operation == "converse-stream")
    else:
        named = {k.lower(): v for k, v in headers}
        identifier = named.get("x-amzn-bedrock-guardrailidentifier")
        config = body.get(CONFIG_FIELD) if isinstance(body, dict) else None
        if identifier is None and config is not None:
            raise validation_error(
                f"{CONFIG_FIELD} was provided in the request body without a guardrail identifier; "
                "provide the X-Amzn-Bedrock-GuardrailIdentifier header."
            )
        if identifier is not None:
            guardrail = book.lookup(identifier, named.get("x-amzn-bedrock-guardrailversion"))
            trace = named.get("x-amzn-bedrock-trace", "DISABLED").lower()
            mode = _invoke_stream_mode(config)
            active = ActiveGuardrail(guardrail, named["x-amzn-bedrock-guardrailversion"], trace, mode)
    if active is None and book.require_guardrail:
        raise _denied(_ACTIONS[operation], region, model_id)
    return active


def _invoke_stream_mode(config: Any) -> str:
    """``streamProcessingMode`` of a native body's ``amazon-bedrock-guardrailConfig`` (sync when absent)."""
    if config is None:
        return "sync"
    if not isinstance(config, dict) or not set(config) <= _INVOKE_CONFIG_FIELDS:
        raise validation_error(f"{CONFIG_FIELD} must be an object with streamProcessingMode or tagSuffix.")
    mode = config.get("streamProcessingMode", "SYNCHRONOUS")
    if mode not in _INVOKE_MODES:
        raise validation_error(f"{CONFIG_FIELD}.streamProcessingMode must be SYNCHRONOUS or ASYNCHRONOUS.")
    return _INVOKE_MODES[mode]


def model_body(operation: str, body: Any) -> Any:
    """The native body as the model sees it: Bedrock takes ``amazon-bedrock-guardrailConfig`` off."""
    if not operation.startswith("invoke") or not isinstance(body, dict) or CONFIG_FIELD not in body:
        return body
    return {k: v for k, v in body.items() if k != CONFIG_FIELD}


def native_guardrail_members(intervened: bool, trace: Json | None) -> Json:
    """What InvokeModel adds to a guarded answer: the action, and the trace when tracing."""
    members: Json = {ACTION_FIELD: "INTERVENED" if intervened else "NONE"}
    if trace is not None:
        members[TRACE_FIELD] = trace
    return members


def with_native_guardrail(events: Iterator[Json], members: Json) -> Iterator[Json]:
    """A guarded native stream: the guardrail's members ride on the last chunk, with the metrics.

    The model's own stop reason stays; an Anthropic ``message_delta`` then has no ``stop_sequence``
    (langchain-ai/langchain-aws#176 saw that key missing on guarded streams).
    """
    for event in events:
        if event.get("type") == "message_delta":
            event = {**event, "delta": {"stop_reason": event["delta"]["stop_reason"]}}
        elif "amazon-bedrock-invocationMetrics" in event:
            event = {**event, **members}
        yield event


@dataclass(frozen=True)
class GuardedText:
    """A prompt-style model's text after the guardrail (Titan, Llama)."""

    text: str
    model_ran: bool  # False: the input was blocked; ``text`` is the guardrail's blocked message
    intervened: bool
    trace: Json | None


def guard_prompt(
    active: ActiveGuardrail, user: str, model_text: str, model_stop: str, *, streaming: bool
) -> GuardedText:
    """A prompt-style model's text through the guardrail, as a Converse answer goes through it."""
    ran: list[bool] = []

    def answer_of() -> Answer:
        ran.append(True)
        return Answer([{"text": model_text}], model_stop, {"inputTokens": 0, "outputTokens": 0})

    request = {"messages": [{"role": "user", "content": [{"text": user}]}]}
    answer, trace = guard_converse(active, request, answer_of, streaming=streaming)
    intervened = answer.stop_reason == "guardrail_intervened"
    return GuardedText(str(answer.content[0]["text"]), bool(ran), intervened, trace)


def _from_converse(book: GuardrailBook, config: Any, stream: bool) -> ActiveGuardrail:
    if not isinstance(config, dict):
        raise validation_error("guardrailConfig must be an object.")
    allowed = {"guardrailIdentifier", "guardrailVersion", "trace"} | (
        {"streamProcessingMode"} if stream else set()
    )
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise validation_error(f"Unknown field(s) in guardrailConfig: {', '.join(unknown)}.")
    trace = config.get("trace", "disabled")
    mode = config.get("streamProcessingMode", "sync")
    if trace not in _TRACES or mode not in _MODES:
        raise validation_error("guardrailConfig has an invalid trace or streamProcessingMode value.")
    guardrail = book.lookup(config.get("guardrailIdentifier"), config.get("guardrailVersion"))
    return ActiveGuardrail(guardrail, config["guardrailVersion"], trace, mode)


# -- guarding a Converse answer ------------------------------------------------------------------
def _user_texts(request: Mapping[str, Any]) -> list[str]:
    messages = request.get("messages") or []
    last: Mapping[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    texts = [b["text"] for b in last.get("content") or [] if isinstance(b, dict) and "text" in b]
    texts += [b["text"] for b in request.get("system") or [] if isinstance(b, dict) and "text" in b]
    return texts


def _answer_texts(answer: Answer) -> list[str]:
    return [b["text"] for b in answer.content if "text" in b]


@dataclass(frozen=True)
class Guarded:
    """An answer after the guardrail, its trace (Converse's ``trace`` member) and the action taken."""

    answer: Answer | None  # None: the input was blocked, the model never ran
    trace: Json | None
    intervened: bool


def _trace(
    active: ActiveGuardrail, inputs: Assessment | None, outputs: Assessment | None, raw: list[str]
) -> Json:
    key = active.guardrail.identifier
    trace: Json = {}
    if inputs is not None:
        trace["inputAssessment"] = {key: inputs.detail}
    if outputs is not None:
        trace["outputAssessments"] = {key: [outputs.detail]}
        if outputs.intervened:
            trace["modelOutput"] = raw
    blocked = (inputs is not None and inputs.blocked) or (outputs is not None and outputs.blocked)
    trace["actionReason"] = "Guardrail blocked." if blocked else "No action."
    return {"guardrail": trace}


def guard_input(active: ActiveGuardrail, request: Mapping[str, Any]) -> tuple[Assessment, Answer | None]:
    """Check the input; when blocked, the answer Bedrock gives instead of calling the model."""
    g = active.guardrail
    full = active.trace == "enabled_full"
    found = assess(g, _user_texts(request), words=g.check_input, mask=False, full=full)
    if not found.blocked:
        return found, None
    usage = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
    blocked = Answer([{"text": g.blocked_input_message}], "guardrail_intervened", usage)
    return found, blocked


def guard_converse(
    active: ActiveGuardrail, request: Mapping[str, Any], answer_of: Any, *, streaming: bool
) -> tuple[Answer, Json | None]:
    """The answer through the guardrail (input first, then output) and the trace when tracing is on."""
    inputs, blocked = guard_input(active, request)
    traced = active.trace != "disabled"
    if blocked is not None:
        return blocked, _trace(active, inputs, None, []) if traced else None
    answer: Answer = answer_of()
    g = active.guardrail
    raw = _answer_texts(answer)
    lenient = streaming and active.stream_mode == "async"  # async streams are never masked
    outputs = assess(g, raw, words=g.check_output, mask=not lenient, full=active.trace == "enabled_full")
    trace = _trace(active, inputs, outputs, raw) if traced else None
    if outputs.blocked:
        if lenient:  # the text went out before the guardrail's verdict; only the stop says so
            return replace(answer, stop_reason="guardrail_intervened"), trace
        return replace(
            answer, content=[{"text": g.blocked_output_message}], stop_reason="guardrail_intervened"
        ), trace
    if outputs.masked:
        texts = iter(outputs.outputs)
        content = [{**b, "text": next(texts)} if "text" in b else b for b in answer.content]
        return replace(answer, content=content, stop_reason="guardrail_intervened"), trace
    return answer, trace


def with_stream_trace(events: Iterator[tuple[str, Json]], trace: Json | None) -> Iterator[tuple[str, Json]]:
    """ConverseStream events with the guardrail trace added to the final ``metadata`` event."""
    for name, payload in events:
        if name == "metadata" and trace is not None:
            payload = {**payload, "trace": trace}
        yield name, payload


# -- ApplyGuardrail -------------------------------------------------------------------------------
def apply_guardrail(book: GuardrailBook, path: str, body: Any) -> bytes:
    """The ApplyGuardrail answer for ``/guardrail/{id}/version/{version}/apply``."""
    parts = path.split("/")
    if len(parts) != 6 or parts[1] != "guardrail" or parts[3] != "version" or parts[5] != "apply":
        raise BedrockError("UnknownOperationException", "Unknown operation", status=404)
    guardrail = book.lookup(unquote(parts[2]), unquote(parts[4]))
    if not isinstance(body, dict):
        raise validation_error("The request body is not valid JSON.")
    source, content = body.get("source"), body.get("content")
    if source not in ("INPUT", "OUTPUT") or not isinstance(content, list) or not content:
        raise validation_error("source must be INPUT or OUTPUT and content a non-empty list.")
    texts = []
    for block in content:
        text = (block.get("text") or {}).get("text") if isinstance(block, dict) else None
        if not isinstance(text, str):
            raise validation_error("Each content block must hold a text block with its text.")
        texts.append(text)
    words = guardrail.check_input if source == "INPUT" else guardrail.check_output
    full = body.get("outputScope") == "FULL"
    found = assess(guardrail, texts, words=words, mask=True, full=full)
    message = guardrail.blocked_input_message if source == "INPUT" else guardrail.blocked_output_message
    if found.blocked:
        outputs = [{"text": message}]
    elif found.masked:
        outputs = [{"text": t} for t in found.outputs]
    else:
        outputs = []
    metrics = found.detail["invocationMetrics"]
    response = {
        "usage": metrics["usage"],
        "action": "GUARDRAIL_INTERVENED" if found.intervened else "NONE",
        "actionReason": "Guardrail blocked."
        if found.blocked
        else ("Guardrail masked." if found.masked else "No action."),
        "outputs": outputs,
        "assessments": [found.detail],
        "guardrailCoverage": metrics["guardrailCoverage"],
    }
    return orjson.dumps(response)
