"""Pure request/response translation between client dialects and Bedrock shapes (no I/O)."""
