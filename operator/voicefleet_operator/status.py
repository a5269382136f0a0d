"""What a VoiceAgent's status says: its regions and conditions. Pure functions, no I/O.

The autoscaler is the status's one writer; these functions decide what it writes, and only
the fields that differ from what is stored, so an idle fleet costs no writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voicefleet_operator import conditions as cond
from voicefleet_operator.policy import Floor

# A region's scale-down floor and its expiry: what the window holds, kept where a restarted
# operator finds it (see policy.Stabilizer.floor).
FLOOR = "scaleDownFloor"
FLOOR_EXPIRY = "scaleDownFloorExpiry"


@dataclass
class RegionOutcome:
    """One region after a tick: its status entry and what the conditions should say."""

    entry: dict[str, Any]
    unreachable: str | None = None
    holding: str | None = None
    scaled: bool = False
    pending: bool = False  # the region's endpoint has not answered its first poll yet


@dataclass(frozen=True)
class StatusReport:
    """What a VoiceAgent's status says beside its regions and conditions."""

    generation: int  # metadata.generation, which conditions are about
    applied: int  # the generation whose objects were applied: status.observedGeneration
    agent_name: str
    region_count: int


def current_replicas(status: Any, region: str, minimum: int) -> int:
    """The replica count the fleet has been given so far (status), else the region minimum."""
    entry = region_entry(status, region)
    return int(entry.get("desiredReplicas", minimum)) if entry else minimum


def region_entry(status: Any, region: str) -> dict[str, Any]:
    """The region's entry in status.regions, or {} when it has none."""
    for entry in (status or {}).get("regions", []):
        if entry.get("name") == region:
            return dict(entry)
    return {}


def stored_floor(entry: dict[str, Any]) -> Floor | None:
    """The scale-down floor a region's status entry holds, if any (and readable)."""
    if entry.get(FLOOR) is None or entry.get(FLOOR_EXPIRY) is None:
        return None
    try:
        until = datetime.fromisoformat(str(entry[FLOOR_EXPIRY]).replace("Z", "+00:00"))
        return Floor(int(entry[FLOOR]), until.timestamp())
    except ValueError:
        return None  # edited by hand into something else: the window starts afresh


def floor_fields(entry: dict[str, Any], floor: Floor | None, slack: float) -> dict[str, Any]:
    """The status fields that persist `floor` for a successor process; None values remove
    them. The expiry written is `slack` seconds late, so that a steady fleet, whose floor's
    expiry moves with every tick, rewrites it at most every `slack` seconds: a successor may
    hold that much longer, never shorter. {} while the stored fields still cover `floor`."""
    stored = stored_floor(entry)
    if floor is None:
        return {FLOOR: None, FLOOR_EXPIRY: None} if FLOOR in entry else {}
    if stored is not None and stored.replicas == floor.replicas and stored.until >= floor.until:
        return {}
    return {FLOOR: floor.replicas, FLOOR_EXPIRY: rfc3339(math.ceil(floor.until + slack))}


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def was_reachable(status: dict[str, Any]) -> bool:
    """Whether the stored status last said LiveKit answers (or said nothing yet)."""
    for condition in status.get("conditions", []):
        if condition.get("type") == cond.LIVEKIT_REACHABLE:
            return bool(condition.get("status") != "False")
    return True


def readiness(
    conditions: list[dict[str, Any]],
    regions: list[dict[str, Any]],
    unreachable: list[str],
    report: StatusReport,
) -> list[dict[str, Any]]:
    """Ready: the current spec is applied and every region can take calls.
    Degraded: some region has fewer ready workers than wanted, or LiveKit is unreadable."""
    generation = report.generation
    short = [
        f"{r['name']}: {r['readyReplicas']}/{r['desiredReplicas']} workers ready"
        for r in regions
        if r["readyReplicas"] < r["desiredReplicas"]
    ]
    unable = [r["name"] for r in regions if r["desiredReplicas"] > 0 and r["readyReplicas"] == 0]
    if report.applied != generation:
        ready, reason, message = False, "Reconciling", f"applying generation {generation}"
    elif unable:
        ready, reason, message = False, "NoReadyWorkers", f"no ready worker in {', '.join(unable)}"
    else:
        ready, reason, message = True, "Reconciled", f"{len(regions)} region(s) serving"
    conditions = cond.set_condition(conditions, cond.READY, ready, reason, message, generation)
    problems = short + unreachable
    return cond.set_condition(
        conditions,
        cond.DEGRADED,
        bool(problems),
        ("WorkersNotReady" if short else "LiveKitUnreachable") if problems else "AsDesired",
        "; ".join(problems) or "every region has the workers it wants",
        generation,
    )


def merged_regions(status: dict[str, Any], outcomes: list[RegionOutcome]) -> list[dict[str, Any]]:
    """Each region's stored entry updated with the tick's; a None value removes a field."""
    previous = {r["name"]: r for r in status.get("regions", [])}
    merged = [{**previous.get(o.entry["name"], {}), **o.entry} for o in outcomes]
    return [{k: v for k, v in entry.items() if v is not None} for entry in merged]


def status_changes(
    status: dict[str, Any], outcomes: list[RegionOutcome], report: StatusReport
) -> dict[str, Any]:
    """The status fields that differ from what is stored, so an idle fleet costs no writes."""
    generation = report.generation
    merged = merged_regions(status, outcomes)
    unreachable = [o.unreachable for o in outcomes if o.unreachable]
    holding = [f"{o.entry['name']}: {o.holding}" for o in outcomes if o.holding]
    conditions = cond.set_condition(
        list(status.get("conditions", [])),
        cond.LIVEKIT_REACHABLE,
        not unreachable,
        "LiveKitUnreachable" if unreachable else "Polling",
        "; ".join(unreachable) or "LiveKit answers; demand is current",
        generation,
    )
    conditions = readiness(conditions, merged, unreachable, report)
    scaled = any(o.scaled for o in outcomes)
    conditions = cond.set_condition(
        conditions,
        cond.SCALING,
        scaled,
        "Scaled" if scaled else ("Holding" if holding else "Steady"),
        "; ".join(holding) or "replicas match demand",
        generation,
    )
    new = {
        "observedGeneration": report.applied,
        "agentName": report.agent_name,
        "regionCount": report.region_count,
        "regions": merged,
        "activeSessions": sum(r["activeSessions"] for r in merged),
        "workers": f"{sum(r['readyReplicas'] for r in merged)}/"
        f"{sum(r['desiredReplicas'] for r in merged)}",
        "conditions": conditions,
    }
    return {key: value for key, value in new.items() if status.get(key) != value}
