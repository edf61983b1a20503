"""The emulator's Bedrock control plane, driven by aiobotocore's own `bedrock` client (SigV4, REST)."""

from __future__ import annotations

from typing import Any

import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY, BedrockEmulator
from bedrock_mw.testing.control_plane import application_profile_arn
from bedrock_mw.testing.credentials import EMULATOR_ACCOUNT_ID

from .conftest import NO_RETRIES

pytestmark = pytest.mark.anyio


def control(emu: BedrockEmulator, region: str = "us-east-1", secret: str = EMULATOR_SECRET_ACCESS_KEY) -> Any:
    return get_session().create_client(
        "bedrock",
        region_name=region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id=EMULATOR_ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )


async def test_foundation_models_are_listed_and_filtered_by_provider(emu: BedrockEmulator) -> None:
    async with control(emu) as client:
        every = (await client.list_foundation_models())["modelSummaries"]
        claude = (await client.list_foundation_models(byProvider="anthropic"))["modelSummaries"]
        on_demand = (await client.list_foundation_models(byInferenceType="ON_DEMAND"))["modelSummaries"]
    ids = {m["modelId"] for m in every}
    assert {"anthropic.claude-opus-5-5", "amazon.nova-pro-v1:0"} <= ids
    assert claude and all(m["providerName"] == "Anthropic" for m in claude)
    assert "anthropic.claude-opus-5-5" not in {m["modelId"] for m in on_demand}  # profile-only
    assert every[0]["modelArn"].startswith("arn:aws:bedrock:us-east-1::foundation-model/")


async def test_system_profiles_follow_the_callers_region(emu: BedrockEmulator) -> None:
    async with control(emu, "us-east-1") as us, control(emu, "eu-west-1") as eu:
        us_ids = {
            p["inferenceProfileId"] for p in (await us.list_inference_profiles())["inferenceProfileSummaries"]
        }
        eu_ids = {
            p["inferenceProfileId"] for p in (await eu.list_inference_profiles())["inferenceProfileSummaries"]
        }
    assert "us.anthropic.claude-opus-5-5" in us_ids and "global.anthropic.claude-opus-5-5" in us_ids
    assert "eu.anthropic.claude-opus-5-5" in eu_ids and not any(i.startswith("us.") for i in eu_ids)


async def test_profiles_paginate_with_max_results_and_next_token(emu: BedrockEmulator) -> None:
    async with control(emu) as client:
        every = (await client.list_inference_profiles())["inferenceProfileSummaries"]
        pages = client.get_paginator("list_inference_profiles").paginate(PaginationConfig={"PageSize": 3})
        paged = [p async for page in pages for p in page["inferenceProfileSummaries"]]
    assert paged == every and len(every) > 3


async def test_application_profiles_are_listed_and_got_with_their_model(emu: BedrockEmulator) -> None:
    arn = application_profile_arn("us-east-1", EMULATOR_ACCOUNT_ID)
    async with control(emu) as client:
        listed = (await client.list_inference_profiles(typeEquals="APPLICATION"))["inferenceProfileSummaries"]
        got = await client.get_inference_profile(inferenceProfileIdentifier=arn)
        system = await client.get_inference_profile(inferenceProfileIdentifier="us.anthropic.claude-opus-4-7")
    assert [p["inferenceProfileArn"] for p in listed] == [arn]
    assert got["type"] == "APPLICATION"
    assert got["models"][0]["modelArn"].endswith("foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0")
    assert system["type"] == "SYSTEM_DEFINED"


async def test_an_unknown_profile_is_resource_not_found(emu: BedrockEmulator) -> None:
    async with control(emu) as client:
        with pytest.raises(ClientError) as caught:
            await client.get_inference_profile(inferenceProfileIdentifier="us.anthropic.claude-none")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_a_bad_signature_is_refused_as_bedrock_does(emu: BedrockEmulator) -> None:
    async with control(emu, secret="wrong") as client:
        with pytest.raises(ClientError) as caught:
            await client.list_foundation_models()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


async def test_control_plane_calls_stay_out_of_the_runtime_request_log(emu: BedrockEmulator) -> None:
    async with control(emu) as client:
        await client.list_inference_profiles()
    assert emu.log.entries == []
