"""The OpenAI Responses routes: ``POST /v1/responses`` and the stored-response reads and delete.

Creating a response reads as the chat-completions route does: authenticate → route → translate →
dispatch → transcode → respond, then keep the response when the caller asked (``store``, the API's
default). The reasoning seal and the response store live here, built once per gateway.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from starlette.responses import Response
from starlette.routing import Route

from .config import GatewayConfig
from .errors import Dialect, ErrorKind, GatewayError, invalid
from .gateway import Gateway, RequestContext
from .guardrails import attach_trace, outcome_of_converse
from .http import json_response
from .media import FetchRules, fetch_media
from .response_store import ResponseStore, StoredResponse
from .routing.families import ChatApi
from .stream.responses import ResponsesStreamTranscoder
from .translate.openai.params import OpenAIOptions
from .translate.responses import (
    ReasoningSeal,
    ResponseHead,
    ResponsesCall,
    ResponsesOptions,
    converse_to_response,
    image_urls,
    new_id,
    response_of_reasoning_id,
    responses_to_converse,
)
from .translate.types import TokenUsage

if TYPE_CHECKING:
    from .translate.responses.shapes import InputItem, OutputItem, ResponseObject
    from .translate.types import JSONObject

log = logging.getLogger("bedrock_mw")
Handler = Callable[[Gateway, RequestContext], Awaitable[Response]]
EndpointFactory = Callable[[Gateway, Dialect, str, Handler], Any]


class ResponsesRoutes:
    """The Responses endpoints of one gateway: its reasoning seal, and the gateway's response store."""

    def __init__(self, config: GatewayConfig, store: ResponseStore) -> None:
        key = config.responses.reasoning_key
        self.seal = ReasoningSeal(key.get_secret_value() if key is not None else None)
        self.store = store

    def routes(self, gateway: Gateway, endpoint: EndpointFactory) -> list[Route]:
        """The four routes, each wrapped by the app's endpoint factory."""
        return [
            Route("/v1/responses", endpoint(gateway, "openai", "responses", self.create), methods=["POST"]),
            Route(
                "/v1/responses/{response_id}",
                endpoint(gateway, "openai", "responses_get", self.retrieve),
                methods=["GET"],
            ),
            Route(
                "/v1/responses/{response_id}",
                endpoint(gateway, "openai", "responses_delete", self.delete),
                methods=["DELETE"],
            ),
            Route(
                "/v1/responses/{response_id}/input_items",
                endpoint(gateway, "openai", "responses_input_items", self.input_items),
                methods=["GET"],
            ),
        ]

    # -- POST /v1/responses ---------------------------------------------------------------------
    async def create(self, gw: Gateway, ctx: RequestContext) -> Response:
        key = await gw.authenticate(ctx)
        body = await gw.read_body(ctx)
        plan = await gw.route(ctx, body.get("model"))
        await gw.reserve_budget(ctx, body)
        family = plan.model.family
        if family.chat_api is not ChatApi.CONVERSE:
            raise invalid(
                f"model {plan.model.requested!r} is not served by Converse; /v1/responses serves "
                "chat models Bedrock's Converse API takes (use /v1/chat/completions for it)",
                param="model",
            )
        history = await self._history(key.id, body.get("previous_response_id"))
        body = await self._stored_reasoning(key.id, body)
        call = responses_to_converse(
            body, family, self._options(gw, key.drop_unsupported_params), self.seal,
            history=history, media=await _media(gw, image_urls(body)),
        )  # fmt: skip
        ctx.notes.update(call.notes)
        head = ResponseHead(model=plan.model.requested, echo=call.echo)
        request = call.converse.request
        if call.converse.stream:
            transcoder = ResponsesStreamTranscoder(head=head, call=call, seal=self.seal)
            response = await gw.stream(
                ctx,
                lambda a: gw.dispatcher.converse_stream(a, ctx.converse_request(a, request, stream=True)),
                transcoder,
                sent=request,
            )
            if call.store:
                body_iterator = cast(AsyncGenerator[bytes, None], response.body_iterator)  # type: ignore[attr-defined]
                response.body_iterator = self._store_when_done(  # type: ignore[attr-defined]
                    body_iterator, transcoder, key.id, call, history
                )
            return response
        result = await gw.call(
            ctx, lambda a: gw.dispatcher.converse(a, ctx.converse_request(a, request, stream=False))
        )
        answer, items = converse_to_response(result, head, call, self.seal)
        ctx.guardrail = outcome_of_converse(result.get("stopReason"), result.get("trace"))
        if call.store:
            await self._save(key.id, answer, call, history, items)
        await gw.record(ctx, status=200, usage=TokenUsage.from_converse(result.get("usage")))
        return json_response(attach_trace(answer, ctx.guardrail), headers=ctx.response_headers())

    @staticmethod
    def _options(gw: Gateway, per_key_drop: bool | None) -> ResponsesOptions:
        cfg = gw.config
        drop = cfg.drop_unsupported_params if per_key_drop is None else per_key_drop
        chat = OpenAIOptions(
            allow_url_fetch=cfg.allow_url_fetch,
            drop_unsupported_params=drop,
            max_cache_points=cfg.max_cache_points,
        )
        return ResponsesOptions(openai=chat, reject_unknown_fields=cfg.reject_unknown_fields)

    async def _history(self, key_id: str, previous: object) -> Sequence[InputItem] | None:
        if previous is None:
            return None
        if not isinstance(previous, str):
            raise invalid("previous_response_id must be a string", param="previous_response_id")
        record = await self.store.get(key_id, previous)
        if record is None:
            raise GatewayError(
                ErrorKind.NOT_FOUND,
                f"previous response with id {previous!r} not found (it expired, was deleted, was "
                "created with store: false, or belongs to another key)",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return record.history

    async def _stored_reasoning(self, key_id: str, body: JSONObject) -> JSONObject:
        """Reasoning items sent back without ``encrypted_content`` get it from their stored response.

        The Agents SDK replays its own history with ``store: true`` and no ``include``; a reasoning
        item's id names its response, so its sealed thinking is found there (this key's only).
        """
        items = body.get("input")
        if not isinstance(items, list):
            return body
        missing = {
            str(item["id"]): response_id
            for item in items
            if isinstance(item, dict)
            and item.get("type") == "reasoning"
            and item.get("encrypted_content") is None
            and (response_id := response_of_reasoning_id(item.get("id")))
        }
        if not missing:
            return body
        sealed: dict[str, str] = {}
        for response_id in set(missing.values()):
            record = await self.store.get(key_id, response_id)
            for stored in record.history if record is not None else ():
                if (
                    stored.get("type") == "reasoning"
                    and stored.get("id") in missing
                    and stored.get("encrypted_content")
                ):
                    sealed[stored["id"]] = stored["encrypted_content"]
        restored = [
            {**item, "encrypted_content": sealed[item["id"]]}
            if isinstance(item, dict) and item.get("id") in sealed and item.get("type") == "reasoning"
            else item
            for item in items
        ]
        return {**body, "input": restored}

    async def _save(
        self,
        key_id: str,
        answer: ResponseObject,
        call: ResponsesCall,
        history: Sequence[InputItem] | None,
        output: list[OutputItem],
    ) -> None:
        listed = [_listed(item) for item in call.items]
        conversation: list[InputItem] = [*(history or []), *listed, *output]
        await self.store.put(key_id, StoredResponse(answer, listed, conversation))

    async def _store_when_done(
        self,
        body: AsyncGenerator[bytes, None],
        transcoder: ResponsesStreamTranscoder,
        key_id: str,
        call: ResponsesCall,
        history: Sequence[InputItem] | None,
    ) -> AsyncIterator[bytes]:
        """Relay the stream; store the response before its final event reaches the caller."""
        stored = False
        try:
            async for chunk in body:
                if not stored and transcoder.final is not None:
                    stored = True
                    try:
                        await self._save(key_id, transcoder.final, call, history, transcoder.items)
                    except Exception:  # the answer still reaches the caller; the failure is logged
                        log.exception("storing a streamed response failed")
                yield chunk
        finally:
            await body.aclose()

    # -- stored responses -------------------------------------------------------------------------
    async def _stored(self, gw: Gateway, ctx: RequestContext) -> tuple[str, StoredResponse]:
        key = await gw.authenticate(ctx)
        await gw.admit(ctx)
        response_id = str(ctx.request.path_params["response_id"])
        record = await self.store.get(key.id, response_id)
        if record is None:
            raise _not_found(response_id)
        return key.id, record

    async def retrieve(self, gw: Gateway, ctx: RequestContext) -> Response:
        _, record = await self._stored(gw, ctx)
        await gw.record(ctx, status=200)
        return json_response(record.response, headers=ctx.response_headers())

    async def delete(self, gw: Gateway, ctx: RequestContext) -> Response:
        key = await gw.authenticate(ctx)
        await gw.admit(ctx)
        response_id = str(ctx.request.path_params["response_id"])
        if not await self.store.delete(key.id, response_id):
            raise _not_found(response_id)
        await gw.record(ctx, status=200)
        payload = {"id": response_id, "object": "response", "deleted": True}
        return json_response(payload, headers=ctx.response_headers())

    async def input_items(self, gw: Gateway, ctx: RequestContext) -> Response:
        _, record = await self._stored(gw, ctx)
        query = ctx.request.query_params
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid("order must be asc or desc", param="order")
        limit_text = query.get("limit", "20")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            raise invalid("limit must be an integer from 1 to 100", param="limit")
        items = record.input_items if order == "asc" else list(reversed(record.input_items))
        after = query.get("after")
        if after is not None:
            ids = [item.get("id") for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[: int(limit_text)]
        payload = {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > len(page),
        }
        await gw.record(ctx, status=200)
        return json_response(payload, headers=ctx.response_headers())


def _listed(item: InputItem) -> InputItem:
    """An input item as the input_items list shows it: with an id, message content as parts."""
    out = dict(item)
    if out.get("type") == "message" and isinstance(out.get("content"), str):
        part = "output_text" if out.get("role") == "assistant" else "input_text"
        out["content"] = [{"type": part, "text": out["content"]}]
    if "id" not in out:
        prefix = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}
        out["id"] = new_id(prefix.get(str(out.get("type")), "item"))
    return out


def _not_found(response_id: str) -> GatewayError:
    return GatewayError(
        ErrorKind.NOT_FOUND, f"No response found with id {response_id!r}.", code="response_not_found"
    )


async def _media(gw: Gateway, urls: list[str]) -> dict[str, tuple[bytes, str]] | None:
    if not urls or not gw.config.allow_url_fetch:
        return None
    return await fetch_media(urls, FetchRules.from_config(gw.config, gw.url_fetch_policy))
