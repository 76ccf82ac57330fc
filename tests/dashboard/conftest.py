"""Dashboard fixtures: the API tests' served App and keys, and sign-in helpers.

The ``api`` fixture (tests/api/conftest.py) serves an App of ``clinic-a`` over httpx's
ASGI transport from 127.0.0.1 to ``http://127.0.0.1``: plain http on loopback, so the
session cookie is not ``Secure`` and httpx sends it back.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from tests.api.conftest import Api, api, api_options  # noqa: F401  (fixtures used here)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    """The CSRF token a dashboard page's forms carry."""
    found = CSRF.search(html)
    assert found is not None, html
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """Open the sign-in form and post ``key`` with the form's token."""
    form = await client.get("/dashboard/sign-in")
    assert form.status_code == 200
    return await client.post("/dashboard/sign-in", data={"key": key, "csrf": csrf_of(form.text)})


@pytest.fixture
def new_client(api: Api) -> ClientFactory:  # noqa: F811
    """``async with new_client() as client``: a fresh cookie jar on the same served app."""

    @asynccontextmanager
    async def make(base_url: str = "http://127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=api.client._transport, base_url=base_url) as c:
            yield c

    return make
