"""Fleet: demand against capacity, workers and scaling, LiveKit polling, the operator."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from voicefleet_dashboards import metrics as m
from voicefleet_dashboards.grafana.panels import (
    RATE,
    Board,
    filtered,
    query,
    state_panel,
    thresholds,
    timeseries_panel,
)
from voicefleet_dashboards.promql import by
from voicefleet_dashboards.rules import CAPACITY_IN_USE

FLEET = by(m.FLEET_LABELS)
WHERE = "{{namespace}}/{{agent}} {{region}}"


def gauge(metric: str) -> str:
    return f"max by ({FLEET}) ({filtered(metric)})"


def demand_rows(board: Board) -> None:
    board.row("Demand and capacity").add(
        timeseries_panel(
            "Demand and capacity",
            "Sessions LiveKit carries for the agent (demand) against sessionsPerWorker × ready "
            "workers (capacity). Demand close to capacity means new calls wait for a worker.",
            units.Short,
            [
                query(gauge(m.DEMAND_SESSIONS), f"demand {WHERE}"),
                query(gauge(m.CAPACITY_SESSIONS), f"capacity {WHERE}"),
            ],
        ),
        timeseries_panel(
            "Capacity in use",
            "Demand divided by capacity. The autoscaler keeps headroom and warm workers, so "
            "this stays well under 100% unless scaling is capped or too slow.",
            units.PercentUnit,
            [query(filtered(CAPACITY_IN_USE), WHERE)],
            limits=thresholds((0.8, "orange"), (1.0, "red")),
        ),
        timeseries_panel(
            "Sessions in progress on workers",
            "Sessions the workers themselves report as active, summed per fleet. Compare with "
            "demand: a gap means LiveKit counts sessions no worker has picked up.",
            units.Short,
            [query(f"sum by ({FLEET}) ({filtered(m.ACTIVE_SESSIONS)})", WHERE)],
        ),
        timeseries_panel(
            "Workers at capacity",
            "Workers whose active sessions reached sessionsPerWorker (capacity ÷ ready "
            "workers). LiveKit stops dispatching to a full worker.",
            units.Short,
            [query(workers_at_capacity(), WHERE)],
        ),
    )


def workers_at_capacity() -> str:
    per_worker = f"{gauge(m.CAPACITY_SESSIONS)}\n/\n{gauge(m.READY_REPLICAS)}"
    return (
        f"count by ({FLEET}) (\n  {filtered(m.ACTIVE_SESSIONS)}\n"
        f"  >= on ({FLEET}) group_left ()\n  ({per_worker})\n)"
    )


def worker_rows(board: Board) -> None:
    board.row("Workers and scaling").add(
        timeseries_panel(
            "Desired, existing and ready workers",
            "Workers the autoscaler wants, worker pods that exist and pods that are ready, "
            "with spec maxReplicas. Desired at max means the fleet cannot grow further.",
            units.Short,
            [
                query(gauge(m.DESIRED_REPLICAS), f"desired {WHERE}"),
                query(gauge(m.REPLICAS), f"existing {WHERE}"),
                query(gauge(m.READY_REPLICAS), f"ready {WHERE}"),
                query(gauge(m.MAX_REPLICAS), f"max {WHERE}"),
            ],
        ),
        timeseries_panel(
            "Scale decisions",
            "Replica changes the operator made, by direction, per interval.",
            units.Short,
            [
                query(
                    f"sum by ({FLEET}, direction) "
                    f"(increase({filtered(m.SCALE_DECISIONS)}[{RATE}]))",
                    f"{{{{direction}}}} {WHERE}",
                )
            ],
            bars=True,
        ),
        timeseries_panel(
            "Draining workers",
            "Workers finishing their calls before they stop (rollout or scale-down). They "
            "take no new sessions.",
            units.Short,
            [query(f"sum by ({FLEET}) ({filtered(m.DRAINING)})", WHERE)],
        ),
    )


def livekit_rows(board: Board) -> None:
    endpoint = "{{endpoint}} " + WHERE
    board.row("LiveKit and operator").add(
        state_panel(
            "LiveKit reachable",
            "1 when the operator's last RoomService poll of the endpoint succeeded. While "
            "unreachable, demand is unknown and replicas hold.",
            units.BoolYesNo,
            [query(f"min by ({FLEET}, endpoint) ({filtered(m.LIVEKIT_REACHABLE)})", endpoint)],
            limits=thresholds((1, "green"), base="red"),
        ),
        timeseries_panel(
            "LiveKit poll errors",
            "Failed RoomService polls per second, by endpoint and reason. One collector polls "
            "each endpoint for all VoiceAgents, so this panel ignores the agent filters.",
            units.RequestsPerSecond,
            [
                query(
                    f"sum by (endpoint, reason) (rate({m.LIVEKIT_POLL_ERRORS}[{RATE}]))",
                    "{{reason}} {{endpoint}}",
                )
            ],
        ),
        timeseries_panel(
            "LiveKit poll duration p95",
            "95th percentile of one RoomService poll, by endpoint (all VoiceAgents).",
            units.Seconds,
            [
                query(
                    f"histogram_quantile(0.95, sum by (endpoint, le) "
                    f"(rate({m.LIVEKIT_POLL_DURATION}_bucket[{RATE}])))",
                    "{{endpoint}}",
                )
            ],
        ),
        timeseries_panel(
            "LiveKit webhooks received",
            "Webhooks accepted per second, by event. Webhooks let the operator see new rooms "
            "before the next poll.",
            units.RequestsPerSecond,
            [
                query(
                    f"sum by (event) (rate({filtered(m.WEBHOOKS_RECEIVED)}[{RATE}]))",
                    "{{event}}",
                )
            ],
        ),
        timeseries_panel(
            "Agents dispatched again",
            "Agents lost mid-call in the last hour, and what was done: dispatched into the "
            "room again, or skipped (another agent there, no caller left, given up after "
            "repeated losses, LiveKit refused). A job process that died is put back by its "
            "worker within about a second; a whole worker lost (OOM, node loss, a kill) by "
            "the operator once LiveKit times it out, by how LiveKit saw it go. The operator's "
            "series ignore the agent filters: one collector serves each endpoint.",
            units.Short,
            [
                query(
                    f"sum by (reason, outcome) (increase({m.REDISPATCHES}[1h]))",
                    "{{outcome}} (worker lost: {{reason}})",
                ),
                query(
                    f"sum by (outcome) (increase({filtered(m.JOB_REDISPATCHES)}[1h]))",
                    "{{outcome}} (job process died)",
                ),
            ],
        ),
        timeseries_panel(
            "Reconcile duration",
            "Median and 95th percentile of one VoiceAgent reconcile, across the operator "
            "(this metric has no namespace, agent or region label).",
            units.Seconds,
            [
                query(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate({m.RECONCILE_DURATION}_bucket[{RATE}])))",
                    legend,
                )
                for q, legend in (("0.5", "p50"), ("0.95", "p95"))
            ],
        ),
    )


def dashboard() -> models.Dashboard:
    board = Board(
        "voicefleet-fleet",
        "voicefleet / Fleet",
        "Demand and capacity per agent and region, workers, scaling and LiveKit polling.",
        m.DESIRED_REPLICAS,
    )
    demand_rows(board)
    worker_rows(board)
    livekit_rows(board)
    return board.build()
