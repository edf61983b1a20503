"""Pure stream transcoders: Bedrock stream events in, SSE bytes out (no I/O, no awaits)."""
