"""Webhook fixtures: the API tests' served App of ``clinic-a`` and keys of two orgs."""

from tests.api.conftest import api, api_options  # noqa: F401  (fixtures used here)
