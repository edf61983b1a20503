"""Names shared by the benchmark's processes and its route table (no third-party imports, so the
in-process pieces and their tests load without the ``bench`` extra)."""

HOST = "127.0.0.1"
MODEL = "claude-haiku-4-5"
MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
VIRTUAL_KEY = "vk-bench"
# The same key pinned to Converse for /v1/messages (Claude's default is native InvokeModel).
CONVERSE_KEY = "vk-bench-converse"
# LiteLLM refuses to start without a master key, and refuses a weak one; this one guards loopback only.
LITELLM_KEY = "sk-" + "5e" * 32
# Where the FastAPI host app mounts the gateway (bench.host_app).
HOST_PREFIX = "/llm"
# Where a clocked host app (bench.host_app --clock) answers with its clock's figures.
CLOCK_PATH = "/_bench/host-layers"
