"""Bedrock's rules live once in ``translate/bedrock.py``: pinned against botocore's service model, and
the same answer from every client dialect where the dialects used to disagree."""

from __future__ import annotations

import base64
import re
from typing import Any

import botocore.session
import pytest

from bedrock_mw.errors import GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.translate import bedrock
from bedrock_mw.translate.anthropic import AnthropicOptions, anthropic_to_converse
from bedrock_mw.translate.openai import OpenAIOptions, openai_to_converse

CLAUDE = family_of("anthropic.claude-sonnet-4-5-20250929-v1:0")
MISTRAL = family_of("mistral.mistral-large-2407-v1:0")
SHAPES = botocore.session.get_session().get_service_model("bedrock-runtime")
FETCH_ANTHROPIC = AnthropicOptions(allow_url_fetch=True)
FETCH_OPENAI = OpenAIOptions(allow_url_fetch=True)


def shape(name: str) -> Any:
    return SHAPES.shape_for(name)


def anthropic_user(*blocks: Any, **params: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": list(blocks)}], **params}


def openai_user(*parts: Any, **params: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": list(parts)}], **params}


def first_block(request: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = request["messages"][0]["content"][0]
    return block


# -- the tables are Bedrock's ----------------------------------------------------------------------


def test_image_formats_are_exactly_bedrocks_image_format_enum() -> None:
    assert set(bedrock.IMAGE_FORMATS.values()) == set(shape("ImageFormat").enum)


def test_document_formats_are_exactly_bedrocks_document_format_enum() -> None:
    assert set(bedrock.DOCUMENT_FORMATS.values()) == set(shape("DocumentFormat").enum)


@pytest.mark.parametrize(
    ("pattern", "name"), [(bedrock.TOOL_NAME, "ToolName"), (bedrock.TOOL_USE_ID, "ToolUseId")]
)
def test_tool_name_and_id_patterns_are_bedrocks(pattern: re.Pattern[str], name: str) -> None:
    model = shape(name)
    assert (
        pattern.pattern
        == f"{model.metadata['pattern'][:-1]}{{{model.metadata['min']},{model.metadata['max']}}}"
    )


def test_cache_ttls_and_type_are_bedrocks() -> None:
    assert set(bedrock.CACHE_TTLS) == set(shape("CacheTTL").enum)
    assert bedrock.cache_point("1h") == {"type": shape("CachePointType").enum[0], "ttl": "1h"}


def test_request_metadata_limits_and_alphabet_are_bedrocks() -> None:
    assert shape("RequestMetadata").metadata["max"] == bedrock.METADATA_MAX_PAIRS
    value = shape("RequestMetadataValueString").metadata
    assert value["max"] == bedrock.METADATA_MAX_LENGTH
    service = re.compile(value["pattern"].replace("\\s", " \\t\\n\\r\\x0b\\x0c"), re.ASCII)
    for code in range(0x3000):
        char = chr(code)
        assert bedrock.is_metadata_text(char) == bool(service.fullmatch(char)), repr(char)


def test_document_name_limit_is_bedrocks() -> None:
    assert shape("DocumentBlockNameString").metadata["max"] == bedrock.DOCUMENT_NAME_MAX


# -- where the dialects used to disagree, both now follow Bedrock ----------------------------------


def test_a_fetched_image_served_as_image_jpg_is_a_jpeg_in_both_dialects() -> None:
    media = {"https://x/a.jpg": (b"J", "image/jpg; charset=binary")}
    anthropic = anthropic_to_converse(
        anthropic_user({"type": "image", "source": {"type": "url", "url": "https://x/a.jpg"}}),
        CLAUDE,
        FETCH_ANTHROPIC,
        media=media,
    )
    openai = openai_to_converse(
        openai_user({"type": "image_url", "image_url": {"url": "https://x/a.jpg"}}),
        CLAUDE,
        FETCH_OPENAI,
        media=media,
    )
    expected = {"image": {"format": "jpeg", "source": {"bytes": b"J"}}}
    assert first_block(anthropic.request) == expected == first_block(openai.request)


def test_a_fetched_csv_document_is_sent_as_csv_from_the_anthropic_dialect() -> None:
    call = anthropic_to_converse(
        anthropic_user({"type": "document", "source": {"type": "url", "url": "https://x/t.csv"}}),
        CLAUDE,
        FETCH_ANTHROPIC,
        media={"https://x/t.csv": (b"a,b\n1,2\n", "text/csv")},
    )
    assert first_block(call.request)["document"]["format"] == "csv"


@pytest.mark.parametrize(
    ("wanted", "name"),
    [
        ("q3 report.v2", "q3 report v2"),
        ("Notes:\t\tdraft_1", "Notes draft 1"),
        ("(a) [b] c-d", "(a) [b] c-d"),
        ("!!!", "document-1"),
        ("x" * 300, "x" * 200),
    ],
)
def test_document_names_keep_bedrocks_alphabet_and_length(wanted: str, name: str) -> None:
    assert bedrock.DocumentNames().name(wanted) == name


def test_repeated_document_names_get_a_suffix_within_bedrocks_limit_in_both_dialects() -> None:
    long = "y" * 250
    pdf = base64.b64encode(b"%PDF-1.4").decode()
    anthropic = anthropic_to_converse(
        anthropic_user(
            *[
                {
                    "type": "document",
                    "title": long,
                    "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                }
            ]
            * 2
        ),
        CLAUDE,
        AnthropicOptions(),
    )
    part = {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{pdf}", "filename": f"{long}.pdf"},
    }
    openai = openai_to_converse(openai_user(part, part), CLAUDE, OpenAIOptions())
    for call in (anthropic, openai):
        names = [b["document"]["name"] for b in call.request["messages"][0]["content"]]
        assert names == ["y" * 200, "y" * 196 + " (2)"]


def test_a_file_without_a_usable_name_is_named_by_its_position() -> None:
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF").decode()
    call = openai_to_converse(
        openai_user({"type": "file", "file": {"file_data": pdf}}), CLAUDE, OpenAIOptions()
    )
    assert first_block(call.request)["document"]["name"] == "document-1"


def test_an_empty_data_url_is_refused_before_bedrock_which_wants_one_byte_at_least() -> None:
    with pytest.raises(GatewayError) as caught:
        openai_to_converse(
            openai_user({"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}),
            CLAUDE,
            OpenAIOptions(),
        )
    assert caught.value.param == "messages[0].content[0].image_url.url"
    assert "empty" in caught.value.message


def test_whitespace_only_text_is_dropped_in_both_dialects_as_bedrock_refuses_blank_text() -> None:
    anthropic = anthropic_to_converse(
        anthropic_user({"type": "text", "text": " \n"}, {"type": "text", "text": "hi"}),
        CLAUDE,
        AnthropicOptions(),
    )
    openai = openai_to_converse(
        openai_user({"type": "text", "text": " \n"}, {"type": "text", "text": "hi"}), CLAUDE, OpenAIOptions()
    )
    assert (
        anthropic.request["messages"]
        == openai.request["messages"]
        == [{"role": "user", "content": [{"text": "hi"}]}]
    )


def test_metadata_outside_bedrocks_ascii_alphabet_is_cleaned_not_passed_on() -> None:
    # Python's \s matches a no-break space; Bedrock's pattern does not.
    call = anthropic_to_converse(
        anthropic_user({"type": "text", "text": "hi"}, metadata={"user_id": "a\u00a0b"}),
        CLAUDE,
        AnthropicOptions(),
    )
    assert call.request["requestMetadata"] == {"user_id": "a_b"}


def test_dropped_cache_hints_are_named_by_one_header_in_both_dialects() -> None:
    marker = {"type": "ephemeral"}
    anthropic = anthropic_to_converse(
        anthropic_user({"type": "text", "text": "hi", "cache_control": marker}),
        MISTRAL,
        AnthropicOptions(),
    )
    openai = openai_to_converse(
        openai_user({"type": "text", "text": "hi", "cache_control": marker}),
        MISTRAL,
        OpenAIOptions(),
    )
    assert anthropic.notes[bedrock.DROPPED_CACHE_HEADER] == openai.notes[bedrock.DROPPED_CACHE_HEADER] == "1"
