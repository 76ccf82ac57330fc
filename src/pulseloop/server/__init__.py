"""The HTTP side of pulseloop: an ASGI app (FastAPI) built by :func:`create_app`.

For now it serves the patient's scan page (``/s/<token>``); the ``/v1`` API and the
dashboard join the same app later, each in its own module. Needs ``fastapi``, ``uvicorn``
and ``jinja2``.
"""

from pulseloop.server.app import create_app

__all__ = ["create_app"]
