"""``/v1/messages`` and ``count_tokens`` on two upstream APIs: Converse, or Claude's native InvokeModel.

``messages_api`` chooses, per attempt (the most specific setting wins: the key's, then the attempt's
provider's): ``"auto"`` sends Claude models to native InvokeModel, where Bedrock takes Anthropic's
own body, and every other family to Converse; ``"invoke"`` and ``"converse"`` force one (``"invoke"``
applies to Claude only). A fallback attempt may therefore use the other API: each form the plan
needs is translated once, up front, so a bad request is refused before Bedrock is called. Requests
with URL media go through Converse, where the gateway fetches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from starlette.responses import Response

from .config import ProviderConfig, VirtualKeyConfig
from .dispatch import Destination
from .gateway import Gateway, RequestContext
from .guardrails import attach_trace, invoke_guardrail, native_outcome, outcome_of_converse, with_stream_mode
from .http import json_response
from .routing.families import NativeBody
from .routing.model_ids import ModelRef
from .routing.plan import Attempt
from .stream import StreamTranscoder
from .stream.anthropic import AnthropicStreamTranscoder
from .stream.anthropic_native import AnthropicNativeStreamTranscoder
from .translate import anthropic
from .translate.anthropic.native import NativeCall, anthropic_to_invoke
from .translate.types import ConverseCall, TokenUsage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import CountTokensInputTypeDef

Api = Literal["invoke", "converse"]
NOTE_API = "x-bedrock-mw-messages-api"


def messages_api_for(model: ModelRef, key: VirtualKeyConfig | None, provider: ProviderConfig) -> Api:
    """The upstream API one attempt uses for an Anthropic Messages request."""
    if model.family.native_body is not NativeBody.ANTHROPIC:
        return "converse"  # only Claude takes Anthropic's body; unknown models go the Converse way
    alias = model.alias_entry.messages_api if model.alias_entry is not None else None
    setting = alias or (key.messages_api if key is not None else None) or provider.messages_api
    return "converse" if setting == "converse" else "invoke"


@dataclass(slots=True)
class _Answer:
    api: Api
    value: Any
    request_id: str | None


class MessagesRequest:
    """One Messages body, translated into the form of each API its routing plan uses."""

    def __init__(
        self,
        gw: Gateway,
        ctx: RequestContext,
        body: dict[str, Any],
        media: dict[str, tuple[bytes, str]] | None,
        *,
        counting: bool = False,
    ) -> None:
        assert ctx.plan is not None
        self.gw, self.ctx, self.model = gw, ctx, ctx.plan.model
        options, betas = _anthropic_options(gw), _betas(ctx)
        self._force_converse = bool(anthropic.image_urls(body))
        apis = {self.api(a) for a in ctx.plan.attempts}
        self.base_notes = dict(ctx.notes)
        self.converse: ConverseCall | None = None
        self.count_input: CountTokensInputTypeDef | None = None
        self.native: NativeCall | None = None
        family, model_id = self.model.family, self.model.base_model_id
        if "converse" in apis:
            if counting:
                self.count_input = anthropic.anthropic_count_tokens_request(
                    body, family, options, beta_header=betas, media=media, model_id=model_id
                )
            else:
                self.converse = anthropic.anthropic_to_converse(
                    body, family, options, beta_header=betas, media=media, model_id=model_id
                )
        if "invoke" in apis:
            self.native = anthropic_to_invoke(
                body, family, options, beta_header=betas, model_id=model_id, counting=counting
            )

    @property
    def stream(self) -> bool:
        return self.native.stream if self.native is not None else bool(self.converse and self.converse.stream)

    def api(self, attempt: Attempt) -> Api:
        """The API this attempt uses."""
        if self._force_converse:
            return "converse"
        return messages_api_for(self.model, self.ctx.key, attempt.provider)

    def use(self, api: Api) -> None:
        """Name in the response headers what this API's translation changed, and the API itself."""
        notes = self.ctx.notes
        notes.clear()
        notes.update(self.base_notes)
        call = self.native if api == "invoke" else self.converse
        if call is not None:
            notes.update(call.notes)
        notes[NOTE_API] = api


async def create_message(gw: Gateway, ctx: RequestContext, body: dict[str, Any], media: Any) -> Response:
    """The Messages call through the plan, on each attempt's API, plain or streamed."""
    req = MessagesRequest(gw, ctx, body, media)
    requested, message_id = req.model.requested, anthropic.new_message_id()
    if req.stream:

        async def open_(attempt: Attempt) -> Any:
            api = req.api(attempt)
            req.use(api)
            if api == "invoke":
                assert req.native is not None
                spec = ctx.guardrail_for(attempt)
                body = with_stream_mode(req.native.body, spec)
                return await gw.dispatcher.invoke_model_stream(attempt, body, invoke_guardrail(spec))
            assert req.converse is not None
            request = ctx.converse_request(attempt, req.converse.request, stream=True)
            return await gw.dispatcher.converse_stream(attempt, request)

        upstream, first = await gw.open_stream(ctx, open_)
        assert ctx.served_by is not None
        transcoder: StreamTranscoder[Any]
        sent: Any
        if req.api(ctx.served_by) == "invoke":
            assert req.native is not None
            transcoder, sent = AnthropicNativeStreamTranscoder(model=requested), req.native.body
        else:
            assert req.converse is not None
            transcoder = AnthropicStreamTranscoder(model=requested, message_id=message_id, call=req.converse)
            sent = req.converse.request
        return gw.sse(ctx, upstream, first, transcoder, sent=sent)

    async def call(attempt: Attempt) -> _Answer:
        api = req.api(attempt)
        req.use(api)
        if api == "invoke":
            assert req.native is not None
            guardrail = invoke_guardrail(ctx.guardrail_for(attempt))
            result = await gw.dispatcher.invoke_model(attempt, req.native.body, guardrail)
            return _Answer(api, result.body, result.request_id)
        assert req.converse is not None
        request = ctx.converse_request(attempt, req.converse.request, stream=False)
        response = await gw.dispatcher.converse(attempt, request)
        rid = (response.get("ResponseMetadata") or {}).get("RequestId")
        return _Answer(api, response, rid)

    answer = await gw.call(ctx, call)
    if answer.api == "invoke":
        native: dict[str, Any] = answer.value
        native["model"] = requested
        ctx.guardrail = native_outcome(native)
        if ctx.guardrail.intervened:  # Bedrock keeps the model's own stop reason; the caller sees why
            native["stop_reason"] = "refusal"
        await gw.record(ctx, status=200, usage=_native_usage(native.get("usage")))
        return json_response(native, headers=ctx.response_headers())
    assert req.converse is not None
    message = anthropic.converse_to_anthropic(
        answer.value, model=requested, call=req.converse, message_id=message_id
    )
    ctx.guardrail = outcome_of_converse(answer.value.get("stopReason"), answer.value.get("trace"))
    await gw.record(ctx, status=200, usage=TokenUsage.from_converse(answer.value.get("usage")))
    return json_response(attach_trace(message, ctx.guardrail), headers=ctx.response_headers())


async def count_message_tokens(
    gw: Gateway, ctx: RequestContext, body: dict[str, Any], media: Any
) -> Response:
    """CountTokens on the base model, in the form of the first attempt's API."""
    req = MessagesRequest(gw, ctx, body, media, counting=True)
    assert ctx.plan is not None
    first = ctx.plan.attempts[0]
    api = req.api(first)
    req.use(api)
    if api == "invoke":
        assert req.native is not None
        input_: CountTokensInputTypeDef = {"invokeModel": {"body": orjson.dumps(req.native.body)}}
    else:
        assert req.count_input is not None
        input_ = req.count_input
    # CountTokens takes base model ids only: a profile, an ARN or an alias is counted on its base model.
    base = req.model.base_model_id
    tokens = await gw.call(
        ctx, lambda a: gw.dispatcher.count_tokens(Destination(a.provider, a.region, base), input_)
    )
    await gw.record(ctx, status=200)
    return json_response({"input_tokens": tokens}, headers=ctx.response_headers())


def _native_usage(usage: Any) -> TokenUsage:
    if not isinstance(usage, dict):
        return TokenUsage()
    return TokenUsage(
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        int(usage.get("cache_read_input_tokens") or 0),
        int(usage.get("cache_creation_input_tokens") or 0),
    )


def _betas(ctx: RequestContext) -> str | None:
    values = ctx.request.headers.getlist("anthropic-beta")
    return ",".join(values) if values else None


def _anthropic_options(gw: Gateway) -> anthropic.AnthropicOptions:
    cfg = gw.config
    options = anthropic.AnthropicOptions(
        allow_url_fetch=cfg.allow_url_fetch,
        max_cache_points=cfg.max_cache_points,
        reject_unknown_fields=cfg.reject_unknown_fields,
    )
    if cfg.supported_betas is None:
        return options
    return anthropic.AnthropicOptions(
        allow_url_fetch=cfg.allow_url_fetch,
        supported_betas=frozenset(cfg.supported_betas),
        max_cache_points=cfg.max_cache_points,
        reject_unknown_fields=cfg.reject_unknown_fields,
    )
