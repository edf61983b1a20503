"""HTTP plumbing shared by the routes, one module a job.

``body`` reads a bounded JSON request body; ``responses`` builds JSON and error responses with
header values made safe; ``sse`` streams server-sent events and stops when the client leaves;
``disconnects`` cancels work whose caller went away.
"""

from __future__ import annotations

from .body import read_bytes, read_json
from .disconnects import ClientDisconnected, unless_disconnected
from .responses import error_response, json_response, safe_headers
from .sse import SSE_MEDIA_TYPE, SSEResponse

__all__ = [
    "SSE_MEDIA_TYPE",
    "ClientDisconnected",
    "SSEResponse",
    "error_response",
    "json_response",
    "read_bytes",
    "read_json",
    "safe_headers",
    "unless_disconnected",
]
