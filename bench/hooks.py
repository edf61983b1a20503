"""The usage hook the benchmarked gateway runs, so that feature is paid for in every measurement."""

from __future__ import annotations

from collections import Counter

from bedrock_mw import UsageRecord

TOTALS: Counter[str] = Counter()


async def tally(record: UsageRecord) -> None:
    """Add up requests and tokens per key, as a host's billing hook would (in memory here)."""
    key = record.key_id or "-"
    TOTALS[f"{key}:requests"] += 1
    TOTALS[f"{key}:input_tokens"] += record.usage.input_tokens
    TOTALS[f"{key}:output_tokens"] += record.usage.output_tokens
