"""Server-rendered HTML: the Jinja2 templates in ``templates/`` (autoescaped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def render_page(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render template ``name`` with ``context`` as a full HTML page."""
    return templates.TemplateResponse(request, name, context, status_code=status_code)
