"""The fleet-wide Prometheus rule file: recording rules, SLO rules and operational alerts.

Recording rules follow Prometheus' `level:metric:operations` naming; the level lists the
labels a series keeps.
"""

from __future__ import annotations

from typing import Any

from voicefleet_dashboards import config, cost, slo
from voicefleet_dashboards.metrics import (
    ACTIVE_SESSIONS,
    CAPACITY_SESSIONS,
    DEMAND_SESSIONS,
    DESIRED_REPLICAS,
    FLEET_LABELS,
    LATENCY_STAGES,
    LIVEKIT_REACHABLE,
    MAX_REPLICAS,
    PROVIDER_ERRORS,
    QUANTILES,
    READY_REPLICAS,
    TOOL_CALL,
    TOOL_ERRORS,
    TURNS,
    Stage,
)
from voicefleet_dashboards.promql import by, number
from voicefleet_dashboards.slo import Group, Rule, alerting, recording

WINDOW = config.RATE_WINDOW
FLEET_LEVEL = "_".join(FLEET_LABELS)
ERROR_LABELS = (*FLEET_LABELS, "stage", "provider")

CAPACITY_IN_USE = f"{FLEET_LEVEL}:voicefleet_operator_capacity_in_use:ratio"
PROVIDER_ERRORS_PER_TURN = (
    f"{'_'.join(ERROR_LABELS)}:voicefleet_agent_provider_errors_per_turn:ratio_rate{WINDOW}"
)


TOOL_LABELS = (*FLEET_LABELS, "tool")
TOOL_ERRORS_PER_CALL = (
    f"{'_'.join(TOOL_LABELS)}:voicefleet_agent_tool_errors_per_call:ratio_rate{WINDOW}"
)


def bucket_rate(stage: Stage) -> str:
    """Recorded per-bucket rate of a latency histogram, kept by the stage's labels and `le`."""
    return f"{'_'.join(stage.labels)}_le:{stage.metric}_bucket:rate{WINDOW}"


def quantile_record(stage: Stage) -> str:
    return f"{'_'.join(stage.labels)}_quantile:{stage.metric}:histogram_quantile_rate{WINDOW}"


def latency_rules(stage: Stage) -> list[Rule]:
    buckets = bucket_rate(stage)
    rules = [
        recording(
            buckets,
            f"sum by ({by((*stage.labels, 'le'))}) (rate({stage.metric}_bucket[{WINDOW}]))",
        )
    ]
    rules += [
        recording(
            quantile_record(stage),
            f"histogram_quantile({number(q)}, {buckets})",
            {"quantile": number(q)},
        )
        for q in QUANTILES
    ]
    return rules


def gauge(metric: str) -> str:
    # max, not sum: while two operator replicas overlap both may export the same series.
    return f"max by ({by(FLEET_LABELS)}) ({metric})"


def fleet_rules() -> list[Rule]:
    errors = f"sum by ({by(ERROR_LABELS)}) (rate({PROVIDER_ERRORS}[{WINDOW}]))"
    turns = f"sum by ({by(FLEET_LABELS)}) (rate({TURNS}[{WINDOW}]))"
    return [
        recording(CAPACITY_IN_USE, f"{gauge(DEMAND_SESSIONS)}\n/\n{gauge(CAPACITY_SESSIONS)}"),
        recording(
            PROVIDER_ERRORS_PER_TURN,
            f"{errors}\n/ on ({by(FLEET_LABELS)}) group_left\n{turns}",
        ),
        recording(
            TOOL_ERRORS_PER_CALL,
            f"sum by ({by(TOOL_LABELS)}) (rate({TOOL_ERRORS}[{WINDOW}]))\n/\n"
            f"sum by ({by(TOOL_LABELS)}) (rate({TOOL_CALL}_count[{WINDOW}]))",
        ),
    ]


def workers_at_capacity() -> Rule:
    earlier = gauge(f"{DEMAND_SESSIONS} offset {config.DEMAND_RISING_WINDOW}")
    rising = f"{gauge(DEMAND_SESSIONS)} - {earlier} > 0"
    # From the raw gauges, not the recorded ratio: another group's result may lag one interval.
    in_use = f"{gauge(DEMAND_SESSIONS)}\n/\n{gauge(CAPACITY_SESSIONS)}"
    expr = (
        f"({in_use})\n>= {number(config.CAPACITY_IN_USE_ALERT)}\n"
        f"and on ({by(FLEET_LABELS)})\n({rising})"
    )
    return alerting(
        "VoiceFleetWorkersAtCapacity",
        expr,
        "5m",
        "page",
        "{{ $labels.namespace }}/{{ $labels.agent }} in {{ $labels.region }} is out of capacity",
        "LiveKit carries as many sessions as the ready workers can serve "
        "({{ $value | humanizePercentage }} of capacity) and demand is still rising: new calls "
        "wait for a worker or are not answered.",
    )


def replicas_capped() -> Rule:
    return alerting(
        "VoiceFleetReplicasCappedByMax",
        f"{gauge(DESIRED_REPLICAS)}\n>=\n{gauge(MAX_REPLICAS)}",
        "15m",
        "ticket",
        "{{ $labels.namespace }}/{{ $labels.agent }} in {{ $labels.region }} "
        "is held at maxReplicas",
        "The autoscaler wants {{ $value }} workers, as many as spec.regions[].maxReplicas "
        "allows, so it cannot add capacity if demand grows.",
    )


def livekit_unreachable() -> Rule:
    return alerting(
        "VoiceFleetLiveKitUnreachable",
        f"max by ({by((*FLEET_LABELS, 'endpoint'))}) ({LIVEKIT_REACHABLE}) == 0",
        "2m",
        "page",
        "The operator cannot reach LiveKit for {{ $labels.namespace }}/{{ $labels.agent }} "
        "in {{ $labels.region }}",
        "Polls of {{ $labels.endpoint }} fail, so demand is unknown: the operator holds the "
        "current number of workers and will not scale up for new calls.",
    )


def operator_down(job_selector: str) -> Rule:
    return alerting(
        "VoiceFleetOperatorDown",
        f"absent(up{{{job_selector}}} == 1)",
        "5m",
        "page",
        "The voicefleet operator is down",
        f"No scrape of up{{{job_selector}}} succeeds: VoiceAgents are not reconciled and no "
        "fleet scales with demand.",
    )


def agent_metrics_absent() -> Rule:
    ready = f"{gauge(READY_REPLICAS)} > 0"
    reporting = f"group by ({by(FLEET_LABELS)}) ({ACTIVE_SESSIONS})"
    return alerting(
        "VoiceFleetAgentMetricsAbsent",
        f"{ready}\nunless on ({by(FLEET_LABELS)})\n{reporting}",
        "10m",
        "ticket",
        "No worker metrics from {{ $labels.namespace }}/{{ $labels.agent }} "
        "in {{ $labels.region }}",
        "{{ $value }} workers are ready but Prometheus has no voicefleet_agent_* series from "
        "them: latency SLOs and dashboards are blind for this fleet.",
    )


def provider_errors() -> Rule:
    return alerting(
        "VoiceFleetProviderErrorRateHigh",
        f"{PROVIDER_ERRORS_PER_TURN} > {number(config.PROVIDER_ERRORS_PER_TURN_ALERT)}",
        "10m",
        "ticket",
        "{{ $labels.stage }} provider {{ $labels.provider }} fails for "
        "{{ $labels.namespace }}/{{ $labels.agent }} in {{ $labels.region }}",
        "{{ $value | humanizePercentage }} of turns see a failed {{ $labels.stage }} request "
        "to {{ $labels.provider }}; fallbacks add latency and a failing last provider fails "
        "the session.",
    )


def tool_errors() -> Rule:
    return alerting(
        "VoiceFleetToolErrorRateHigh",
        f"{TOOL_ERRORS_PER_CALL} > {number(config.TOOL_ERRORS_PER_CALL_ALERT)}",
        "10m",
        "ticket",
        "Tool {{ $labels.tool }} fails for {{ $labels.namespace }}/{{ $labels.agent }} "
        "in {{ $labels.region }}",
        "{{ $value | humanizePercentage }} of calls to {{ $labels.tool }} fail: callers hear "
        "its failure line instead of an answer.",
    )


def operational_alerts(job_selector: str) -> list[Rule]:
    return [
        workers_at_capacity(),
        replicas_capped(),
        livekit_unreachable(),
        operator_down(job_selector),
        agent_metrics_absent(),
        provider_errors(),
        tool_errors(),
    ]


def rule_file(operator_job_selector: str = config.OPERATOR_JOB_SELECTOR) -> dict[str, Any]:
    groups: list[Group] = [
        {
            "name": "voicefleet-latency",
            "rules": [rule for stage in LATENCY_STAGES for rule in latency_rules(stage)],
        },
        {"name": "voicefleet-fleet", "rules": fleet_rules()},
        *slo.fleet_groups(),
        {"name": "voicefleet-alerts", "rules": operational_alerts(operator_job_selector)},
        {"name": "voicefleet-cost", "rules": [*cost.cost_rules(), cost.unpriced_alert()]},
    ]
    return {"groups": groups}
