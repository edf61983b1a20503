"""Document citations: the emulator's cited answer, read back by botocore (Converse and ConverseStream)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
SENTENCE = "The sky is blue."


def cited_messages(enabled: bool = True) -> list[dict[str, Any]]:
    document = {
        "format": "txt",
        "name": "Sky facts",
        "source": {"bytes": (SENTENCE + " Grass is green.").encode()},
        "citations": {"enabled": enabled},
    }
    return [{"role": "user", "content": [{"document": document}, {"text": "What colour is the sky?"}]}]


EXPECTED_CITATION = {
    "title": "Sky facts",
    "sourceContent": [{"text": SENTENCE}],
    "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": len(SENTENCE)}},
}


async def test_converse_cites_the_first_sentence_of_a_document_with_citations(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        response = await client.converse(modelId=SONNET4, messages=cited_messages())
    assert response["output"]["message"]["content"] == [
        {"citationsContent": {"content": [{"text": SENTENCE}], "citations": [EXPECTED_CITATION]}}
    ]
    assert response["usage"]["outputTokens"] == 4


async def test_converse_without_citations_enabled_echoes_as_usual(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.converse(modelId=SONNET4, messages=cited_messages(enabled=False))
    assert response["output"]["message"]["content"] == [{"text": "Echo: What colour is the sky?"}]


async def test_converse_stream_sends_the_text_then_a_citation_delta(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.converse_stream(modelId=SONNET4, messages=cited_messages())
        events = [event async for event in response["stream"]]
    deltas = [e["contentBlockDelta"]["delta"] for e in events if "contentBlockDelta" in e]
    assert "".join(d.get("text", "") for d in deltas) == SENTENCE
    assert "text" in deltas[0] and deltas[-1] == {"citation": EXPECTED_CITATION}
