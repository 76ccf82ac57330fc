"""Helpers for testing loops: a clock you move by hand."""

from pulseloop.testing.clock import FakeClock

__all__ = ["FakeClock"]
