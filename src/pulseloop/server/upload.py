"""Reading a request body with a hard size limit.

The limit is enforced while the body arrives: a declared ``Content-Length`` over the limit
is refused before a byte is read, and a body that streams past the limit is refused as
soon as it does, so the server never holds more than ``limit + one chunk`` in memory.
"""

from __future__ import annotations

from fastapi import Request

from pulseloop.errors import LimitExceeded


async def read_body_limited(request: Request, limit_bytes: int) -> bytes:
    """The request body, or :class:`LimitExceeded` (413) once it exceeds ``limit_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise _too_large(limit_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise _too_large(limit_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit_bytes: int) -> LimitExceeded:
    return LimitExceeded(
        f"the upload is larger than {limit_bytes:,} bytes; a 30 s scan is about 150 KB, "
        "so send a trace of one scan only"
    )
