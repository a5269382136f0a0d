"""Status conditions as the Kubernetes API conventions define them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

READY = "Ready"
LIVEKIT_REACHABLE = "LiveKitReachable"
SCALING = "Scaling"
DEGRADED = "Degraded"


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
) -> list[dict[str, Any]]:
    """A new condition list with `type_` set; its transition time moves only on a change."""
    value = "Unknown" if status is None else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type_), {})
    unchanged = previous.get("status") == value and "lastTransitionTime" in previous
    updated = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": previous["lastTransitionTime"] if unchanged else now_rfc3339(),
    }
    return [c for c in conditions if c.get("type") != type_] + [updated]
