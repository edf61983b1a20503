"""Pure request/response translation between client dialects and Bedrock shapes (no I/O).

``bedrock`` holds Bedrock's own rules and block builders, once; ``anthropic`` and ``openai`` are the
client dialects, each calling it for anything Bedrock decides.
"""
