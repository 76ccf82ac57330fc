"""The encrypting store defines every Store method itself: none reaches the backend
through ``__getattr__``, where its payloads would be stored unsealed."""

from __future__ import annotations

from typing import Any

import pytest

from pulseloop.store.sealed import store as sealed_store
from pulseloop.store.sealed.store import STORE_MEMBERS, EncryptedStore


def _defined_by_the_layer(name: str) -> bool:
    return any(name in vars(cls) for cls in EncryptedStore.__mro__ if cls is not object)


def test_every_store_method_is_defined_by_the_encrypting_store() -> None:
    assert {"create_run", "record_step", "finish_run", "create_scan"} <= STORE_MEMBERS
    missing = sorted(name for name in STORE_MEMBERS if not _defined_by_the_layer(name))
    assert missing == [], f"Store methods forwarded unsealed: {missing}"


class _Backend:
    commits = 7

    async def publish_patient_note(self, org: str, note: str) -> None:
        raise AssertionError("reached the backend unsealed")


def test_a_store_method_missing_from_the_layer_is_refused_not_forwarded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = EncryptedStore(_Backend(), lambda: pytest.fail("no key is loaded here"))  # type: ignore[arg-type]
    assert store.commits == 7  # a backend extra still passes through
    monkeypatch.setattr(sealed_store, "STORE_MEMBERS", STORE_MEMBERS | {"publish_patient_note"})
    with pytest.raises(AttributeError, match="publish_patient_note"):
        method: Any = store.publish_patient_note
        del method
