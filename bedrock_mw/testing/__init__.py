"""A Bedrock Runtime emulator that speaks the real wire protocol, for tests and offline use.

    with BedrockEmulator() as emu:                  # or: async with BedrockEmulator() as emu
        client = session.create_client("bedrock-runtime", endpoint_url=emu.endpoint_url, ...)
        emu.faults.add(Fault.throttling(model="*claude*", times=1))

The deterministic answering rules are in `bedrock_mw.testing.responder` and docs/emulator.md.
"""

from .app import EmulatorApp
from .credentials import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCOUNT_ID,
    EMULATOR_API_KEY,
    EMULATOR_SECRET_ACCESS_KEY,
    EMULATOR_SESSION_ACCESS_KEY_ID,
    EMULATOR_SESSION_SECRET_ACCESS_KEY,
    EMULATOR_SESSION_TOKEN,
    AccessKey,
    ApiKey,
    Keyring,
    key_fingerprint,
)
from .errors import BedrockError
from .eventstream import encode_event, encode_exception, encode_message
from .faults import Fault, FaultBook
from .guardrails import EmulatedGuardrail, GuardrailBook
from .models import MODEL_RULES, ModelRule, ResolvedModel, resolve_model
from .request_log import LogEntry, RequestLog
from .server import BedrockEmulator, run
from .state import EmulatorSettings, EmulatorState
from .tls import LoopbackCertificate, make_loopback_certificate
from .tokens import json_tokens, plan_input, words

__all__ = [
    "EMULATOR_ACCESS_KEY_ID",
    "EMULATOR_ACCOUNT_ID",
    "EMULATOR_API_KEY",
    "EMULATOR_SECRET_ACCESS_KEY",
    "EMULATOR_SESSION_ACCESS_KEY_ID",
    "EMULATOR_SESSION_SECRET_ACCESS_KEY",
    "EMULATOR_SESSION_TOKEN",
    "MODEL_RULES",
    "AccessKey",
    "ApiKey",
    "BedrockEmulator",
    "BedrockError",
    "EmulatedGuardrail",
    "EmulatorApp",
    "EmulatorSettings",
    "EmulatorState",
    "Fault",
    "FaultBook",
    "GuardrailBook",
    "Keyring",
    "LogEntry",
    "LoopbackCertificate",
    "ModelRule",
    "RequestLog",
    "ResolvedModel",
    "encode_event",
    "encode_exception",
    "encode_message",
    "json_tokens",
    "key_fingerprint",
    "make_loopback_certificate",
    "plan_input",
    "resolve_model",
    "run",
    "words",
]
