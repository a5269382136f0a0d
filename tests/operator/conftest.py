"""The operator's tests: those that start real servers (a control plane, LiveKit, the operator
process) are marked `slow`, so `pytest -m "not slow"` runs the pure and in-process layer
(tests/operator/unit/ and the policy, rendering and schema tests) in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

# The session fixtures of tests/conftest.py that start a server, and those built on them.
SERVER_FIXTURES = frozenset(
    {"cluster", "crd", "operator", "livekit", "images", "real_cluster", "real_node",
     "node_livekit"}
)  # fmt: skip
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents and SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
