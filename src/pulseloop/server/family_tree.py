"""A run's descendants in tree order, for the API and the dashboard's run page."""

from __future__ import annotations

from collections import defaultdict

from pulseloop.store.base import ChildRun, RunFamily


def tree(run_id: str, family: RunFamily) -> list[tuple[ChildRun, int]]:
    """Depth first from ``run_id``: each descendant with its depth (1: a child), each
    followed by the runs it started, siblings oldest first (as the store lists them)."""
    below: dict[str, list[ChildRun]] = defaultdict(list)
    for child in family.descendants:
        below[child.parent_id].append(child)
    ordered: list[tuple[ChildRun, int]] = []
    stack = [(child, 1) for child in reversed(below[run_id])]
    while stack:
        child, depth = stack.pop()
        ordered.append((child, depth))
        stack.extend((grandchild, depth + 1) for grandchild in reversed(below[child.id]))
    return ordered


def tree_of(run_id: str, family: RunFamily) -> dict[str, object]:
    """What the run page's family section shows: the parent link and the tree below."""
    return {
        "parent_id": family.parent_id,
        "parent_step": family.parent_step,
        "rows": tree(run_id, family),
    }
