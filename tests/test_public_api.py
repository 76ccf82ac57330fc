"""The public API is what ``pulseloop/__init__.py`` re-exports; this pins it."""

import pulseloop


def test_public_names_are_pinned() -> None:
    assert sorted(pulseloop.__all__) == sorted([
        "App", "Attempt", "Cron", "Deploy", "Duration", "Event", "Loop", "NonRetryableError",
        "PulseloopError", "Retries", "Run", "Schedule", "Schedules", "Step", "StepCtx",
        "StepInfo", "__version__",
        "parse_duration",
        "enable_tracing", "disable_tracing",
        "ChildLoopFailed",
        "Concurrency", "InvalidFlowControl", "RateLimit",
    ])  # fmt: skip
    for name in pulseloop.__all__:
        assert getattr(pulseloop, name) is not None


def test_every_public_name_is_documented() -> None:
    for name in pulseloop.__all__:
        obj = getattr(pulseloop, name)
        if callable(obj) and not isinstance(obj, type(pulseloop.Duration)):
            assert obj.__doc__, f"{name} has no docstring"
