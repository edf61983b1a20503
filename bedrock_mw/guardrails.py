"""Bedrock Guardrails: which guardrail a call carries, how it is sent, and how an intervention reads.

A guardrail can be set at five levels, least to most specific: the top of the config (every key), a
provider, a virtual key, an alias entry, and the request itself (``x-bedrock-mw-guardrail``, only on
keys with ``allow_request_guardrail``). The most specific level that says something wins; an explicit
``null`` switches the inherited guardrail off unless that one is ``required``. A requirement sticks
once any level sets it, so a more specific level can replace a required guardrail but never drop it.
A ``{"required": true}`` with no identifier demands a guardrail without naming one; a request that
ends up with none is refused before Bedrock is called.

Everything here is pure: the pipeline resolves once per (request, provider) and the translators'
requests get a ``guardrailConfig`` (Converse) or three headers (InvokeModel) added on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from pydantic import BaseModel

from .config import GUARDRAIL_ID, GUARDRAIL_VERSION, AliasEntry, GuardrailConfig
from .dispatch import InvokeOptions
from .errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from .translate.types import ConverseParams

__all__ = [
    "ACTION_FIELD",
    "CONFIG_FIELD",
    "REQUEST_HEADER",
    "TRACE_FIELD",
    "GuardrailOutcome",
    "attach_trace",
    "blocked_input_error",
    "converse_guardrail_config",
    "guardrail_required_error",
    "input_verdict",
    "invoke_guardrail",
    "invoke_guardrail_headers",
    "native_intervened",
    "native_outcome",
    "native_trace",
    "outcome_of_converse",
    "parse_request_guardrail",
    "resolve_guardrail",
    "responses_incomplete_details",
    "with_guardrail",
    "with_stream_mode",
]

REQUEST_HEADER: Final = "x-bedrock-mw-guardrail"
# The field a guardrail trace travels in on our answers: Bedrock's own name on native bodies, and a
# member the Anthropic and OpenAI SDKs ignore.
TRACE_FIELD: Final = "amazon-bedrock-trace"
# Where a native InvokeModel body (or a stream chunk) says whether a guardrail intervened.
ACTION_FIELD: Final = "amazon-bedrock-guardrailAction"
# The body member of a native InvokeModel(WithResponseStream) request that tunes the guardrail.
CONFIG_FIELD: Final = "amazon-bedrock-guardrailConfig"
# ``stream_mode`` as InvokeModelWithResponseStream's ``streamProcessingMode`` spells it.
_INVOKE_STREAM_MODES: Final = {"sync": "SYNCHRONOUS", "async": "ASYNCHRONOUS"}
# Converse stop reasons that mean a guardrail (or Bedrock's content filter) stopped the turn.
INTERVENED_STOPS: Final = frozenset({"guardrail_intervened", "content_filtered"})


def _explicit(model: BaseModel | None) -> bool:
    """Whether ``model`` set ``guardrail`` itself (to a guardrail or to ``null``)."""
    return model is not None and "guardrail" in model.model_fields_set


def _inherit(inherited: GuardrailConfig | None, given: GuardrailConfig | None) -> GuardrailConfig | None:
    """One level more specific: ``given`` replaces ``inherited``, keeping a requirement alive."""
    if given is None:
        return inherited if inherited is not None and inherited.required else None
    if inherited is None:
        return given
    # A bare requirement ({"required": true}) keeps the guardrail already named, now required.
    chosen = given if given.identifier is not None or inherited.identifier is None else inherited
    required = inherited.required or given.required
    return chosen if chosen.required == required else chosen.model_copy(update={"required": required})


def parse_request_guardrail(value: str) -> tuple[str, str]:
    """``<identifier>:<version>`` from the request header (the identifier may be an ARN, with colons)."""
    identifier, sep, version = value.strip().rpartition(":")
    if not sep or not GUARDRAIL_ID.match(identifier) or not GUARDRAIL_VERSION.match(version):
        raise GatewayError(
            ErrorKind.INVALID_REQUEST,
            f"{REQUEST_HEADER} must be '<guardrail id or ARN>:<version number or DRAFT>'",
            param=REQUEST_HEADER,
        )
    return identifier, version


def _from_request(
    inherited: GuardrailConfig | None, header: str, key_id: str, allowed: bool
) -> GuardrailConfig:
    if not allowed:
        raise GatewayError(
            ErrorKind.PERMISSION,
            f"virtual key {key_id!r} may not choose a guardrail per request "
            f"(allow_request_guardrail is off); remove the {REQUEST_HEADER} header",
            code="guardrail_not_allowed",
        )
    identifier, version = parse_request_guardrail(header)
    if inherited is None:
        return GuardrailConfig(identifier=identifier, version=version)
    if (
        inherited.required
        and inherited.identifier is not None
        and (inherited.identifier, inherited.version) != (identifier, version)
    ):
        raise GatewayError(
            ErrorKind.PERMISSION,
            f"virtual key {key_id!r} requires guardrail {inherited.identifier}:{inherited.version}; "
            f"the {REQUEST_HEADER} header cannot replace it",
            code="guardrail_required",
        )
    # The request names the guardrail; trace and stream mode stay as configured.
    return inherited.model_copy(update={"identifier": identifier, "version": version})


def resolve_guardrail(
    *,
    top: GuardrailConfig | None,
    provider: BaseModel | None,
    key: BaseModel,
    alias: AliasEntry | None,
    request_header: str | None,
    key_id: str,
    allow_request: bool,
) -> GuardrailConfig | None:
    """The guardrail one attempt carries (``None``: none), most specific level first; see the module doc."""
    current = top
    for level in (provider, key, alias):
        if _explicit(level):
            current = _inherit(current, level.guardrail)  # type: ignore[union-attr]
    if request_header is not None:
        current = _from_request(current, request_header, key_id, allow_request)
    return current


def guardrail_required_error(key_id: str, allow_request: bool) -> GatewayError:
    """The refusal for a request that would reach Bedrock without the guardrail its key requires."""
    how = (
        f"name one with the {REQUEST_HEADER}: <id>:<version> header"
        if allow_request
        else "ask the gateway's operator to configure one for this key or model"
    )
    return GatewayError(
        ErrorKind.PERMISSION,
        f"virtual key {key_id!r} requires a Bedrock guardrail and this request has none; {how}",
        code="guardrail_required",
    )


def converse_guardrail_config(spec: GuardrailConfig, *, stream: bool) -> dict[str, str]:
    """Converse's ``guardrailConfig`` (ConverseStream's adds ``streamProcessingMode``)."""
    assert spec.identifier is not None and spec.version is not None
    config = {"guardrailIdentifier": spec.identifier, "guardrailVersion": spec.version, "trace": spec.trace}
    if stream and spec.stream_mode is not None:
        config["streamProcessingMode"] = spec.stream_mode
    return config


def with_guardrail(request: ConverseParams, spec: GuardrailConfig | None, *, stream: bool) -> ConverseParams:
    """The Converse request with the guardrail attached (the same dict when there is none)."""
    if spec is None or spec.identifier is None:
        return request
    guarded: ConverseParams = {**request}
    guarded["guardrailConfig"] = cast(Any, converse_guardrail_config(spec, stream=stream))
    return guarded


def invoke_guardrail_headers(spec: GuardrailConfig | None) -> dict[str, str]:
    """The InvokeModel(WithResponseStream) headers that attach ``spec`` to a native body."""
    if spec is None or spec.identifier is None or spec.version is None:
        return {}
    return {
        "X-Amzn-Bedrock-GuardrailIdentifier": spec.identifier,
        "X-Amzn-Bedrock-GuardrailVersion": spec.version,
        "X-Amzn-Bedrock-Trace": spec.trace.upper(),
    }


def invoke_guardrail(spec: GuardrailConfig | None) -> InvokeOptions | None:
    """The dispatcher's InvokeModel options (botocore's names) that attach ``spec`` to a native body."""
    if spec is None or spec.identifier is None or spec.version is None:
        return None
    trace: Any = spec.trace.upper()
    return {"guardrailIdentifier": spec.identifier, "guardrailVersion": spec.version, "trace": trace}


_Body = TypeVar("_Body", bound=Mapping[str, Any])  # a native body: a family's TypedDict, or JSON


def with_stream_mode(body: _Body, spec: GuardrailConfig | None) -> _Body | dict[str, Any]:
    """A native InvokeModelWithResponseStream body with the guardrail's stream mode (the same dict if none).

    The mode travels in the body (``amazon-bedrock-guardrailConfig.streamProcessingMode``), not in a
    header; Bedrock takes the member off before the model sees the body.
    """
    if spec is None or spec.identifier is None or spec.stream_mode is None:
        return body
    given = body.get(CONFIG_FIELD)
    config = {**(given if isinstance(given, dict) else {})}  # a caller's tagSuffix stays
    config["streamProcessingMode"] = _INVOKE_STREAM_MODES[spec.stream_mode]
    return {**body, CONFIG_FIELD: config}


def native_intervened(body: Mapping[str, Any]) -> bool:
    """Whether a native InvokeModel body says a guardrail intervened (the model's own stop stays as is)."""
    return body.get(ACTION_FIELD) == "INTERVENED"


@dataclass(frozen=True, slots=True)
class GuardrailOutcome:
    """What a guardrail did to one answer: whether it intervened, and its trace when tracing was on."""

    intervened: bool
    trace: Any = None

    @property
    def action(self) -> str:
        """``INTERVENED`` or ``NONE``, as Bedrock names guardrail actions."""
        return "INTERVENED" if self.intervened else "NONE"


def native_trace(trace: Any) -> Any:
    """The guardrail assessment inside a native ``amazon-bedrock-trace`` member (``None`` without one).

    Bedrock's answers name it ``guardrail`` as Converse's trace does; the InvokeModel API reference's
    example spells it ``guardrails``, so both are read.
    """
    if not isinstance(trace, dict):
        return None
    return trace.get("guardrail", trace.get("guardrails"))


def native_outcome(body: Mapping[str, Any]) -> GuardrailOutcome:
    """The outcome a native InvokeModel body reports: ``amazon-bedrock-guardrailAction`` and the trace."""
    return GuardrailOutcome(native_intervened(body), native_trace(body.get(TRACE_FIELD)))


def outcome_of_converse(stop_reason: Any, trace: Any) -> GuardrailOutcome:
    """The outcome from a Converse answer's ``stopReason`` and ``trace`` (or a stream's metadata trace)."""
    guardrail = trace.get("guardrail") if isinstance(trace, dict) else None
    return GuardrailOutcome(stop_reason in INTERVENED_STOPS, guardrail)


def responses_incomplete_details(stop_reason: Any) -> dict[str, str] | None:
    """OpenAI Responses ``incomplete_details`` for a Converse stop reason, ``None`` unless a guardrail hit."""
    return {"reason": "content_filter"} if stop_reason in INTERVENED_STOPS else None


def attach_trace(payload: Mapping[str, Any], outcome: GuardrailOutcome) -> Mapping[str, Any]:
    """A non-streamed answer with the guardrail trace (if any) in a member SDKs ignore."""
    if outcome.trace is None:
        return payload
    return {**payload, TRACE_FIELD: {"guardrail": outcome.trace}}


def _has_block(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("action") == "BLOCKED" or any(_has_block(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_block(v) for v in value)
    return False


def input_verdict(answer: Mapping[str, Any], texts: list[str]) -> tuple[GuardrailOutcome, list[str] | None]:
    """What an ApplyGuardrail answer on ``texts`` means: the texts to send on, or ``None`` if blocked."""
    intervened = answer.get("action") == "GUARDRAIL_INTERVENED"
    outcome = GuardrailOutcome(intervened, {"assessments": answer.get("assessments", [])})
    if not intervened:
        return outcome, texts
    outputs = [str((o or {}).get("text", "")) for o in answer.get("outputs") or []]
    if _has_block(answer.get("assessments")) or len(outputs) != len(texts):
        return outcome, None
    return outcome, outputs  # masked, one output per input


def blocked_input_error(spec: GuardrailConfig, answer: Mapping[str, Any]) -> GatewayError:
    """The 400 for an input a guardrail blocked (OpenAI's ``content_filter`` code)."""
    said = " ".join(str((o or {}).get("text", "")) for o in answer.get("outputs") or []).strip()
    return GatewayError(
        ErrorKind.INVALID_REQUEST,
        f"guardrail {spec.identifier}:{spec.version} blocked the input" + (f": {said}" if said else ""),
        param="input",
        code="content_filter",
    )
