"""``python -m example_app``: the example host on http://127.0.0.1:8000 (``$PORT``).

With no AWS credentials configured, the Bedrock emulator is started in-process on a free port and
the demo key points at it; with credentials, the demo key points at real Bedrock
(``$AWS_REGION``, default us-east-1). ``EXAMPLE_EMULATOR=1`` forces the emulator.
"""

from __future__ import annotations

import contextlib
import os
import sys

import anyio
import uvicorn

from bedrock_mw.testing import BedrockEmulator

from .app import aws_credentials_available, bedrock_provider, create_app, emulator_provider

HOST = "127.0.0.1"
DEMO_KEY = "vk-demo"
ANTHROPIC_MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "bedrock/us.amazon.nova-lite-v1:0"


def banner(base: str, upstream: str) -> str:
    llm = f"{base}/llm"
    return f"""
bedrock-mw example host on {base}   (upstream: {upstream})
  host pages:  {base}/   {base}/api/hello   {base}/usage   {base}/api/usage
  gateway:     {llm}   (demo key: {DEMO_KEY})

Try it:

curl -s {llm}/v1/messages -H 'x-api-key: {DEMO_KEY}' -H 'content-type: application/json' \\
  -d '{{"model": "{ANTHROPIC_MODEL}", "max_tokens": 200,
       "messages": [{{"role": "user", "content": "Hello!"}}]}}'

curl -s {llm}/v1/chat/completions -H 'Authorization: Bearer {DEMO_KEY}' -H 'content-type: application/json' \\
  -d '{{"model": "{OPENAI_MODEL}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

python - <<'PY'
import anthropic
client = anthropic.Anthropic(base_url="{llm}", api_key="{DEMO_KEY}")
msg = client.messages.create(model="{ANTHROPIC_MODEL}", max_tokens=200,
                             messages=[{{"role": "user", "content": "Hello!"}}])
print(msg.content[0].text, msg.usage)
PY

python - <<'PY'
import openai
client = openai.OpenAI(base_url="{llm}/v1", api_key="{DEMO_KEY}")
out = client.chat.completions.create(model="{OPENAI_MODEL}",
                                     messages=[{{"role": "user", "content": "Hello!"}}])
print(out.choices[0].message.content, out.usage)
PY

Then see {base}/usage. Ctrl-C to stop.
"""


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    base = f"http://{HOST}:{port}"
    forced = os.environ.get("EXAMPLE_EMULATOR", "").lower()
    if forced in ("1", "true", "yes"):
        use_emulator = True
    elif forced in ("0", "false", "no"):
        use_emulator = False
    else:
        use_emulator = not anyio.run(aws_credentials_available)
    with contextlib.ExitStack() as stack:
        if use_emulator:
            emulator = stack.enter_context(BedrockEmulator(host=HOST, port=0))
            provider = emulator_provider(emulator.endpoint_url)
            upstream = f"Bedrock emulator at {emulator.endpoint_url} (no AWS credentials found)"
        else:
            provider = bedrock_provider()
            upstream = f"AWS Bedrock, {provider['region']}, default credential chain"
        app = create_app(default_provider=provider, public_base_url=base)
        print(banner(base, upstream), flush=True)
        uvicorn.run(app, host=HOST, port=port, log_level=os.environ.get("LOG_LEVEL", "info"))


if __name__ == "__main__":
    sys.exit(main())
