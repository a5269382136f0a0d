"""Service level objectives as Prometheus rules: SLIs, burn rates, error budget and alerts.

The same functions render the fleet-wide defaults (generated/rules.yaml) and the rules of one
VoiceAgent's `spec.slo` (`prometheus_rule`, which the operator applies as a PrometheusRule).
An agent with its own rules records a marker series; the fleet-wide rules skip that agent, so
each agent is covered by exactly one set of SLO rules and pages once.

Alerting follows the multi-window, multi-burn-rate scheme: a tier fires when both its long and
its short window burn the error budget faster than the tier's factor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voicefleet_dashboards import config
from voicefleet_dashboards.metrics import BUCKETS, SESSIONS, SLO_LABELS, VOICE_TO_VOICE, le
from voicefleet_dashboards.promql import by, eq, indent, number, selector

Rule = dict[str, Any]
Group = dict[str, Any]

LEVEL = "_".join(SLO_LABELS)
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PERIOD_DAYS = 30
PERIOD = f"{PERIOD_DAYS}d"
# The 30-day window reads a month of raw samples: evaluating it less often costs nothing useful.
PERIOD_EVALUATION_INTERVAL = "5m"

BURN_RATE = f"{LEVEL}:voicefleet_slo_error_budget:burnrate"
OBJECTIVE = f"{LEVEL}:voicefleet_slo_objective:ratio"
BUDGET_REMAINING = f"{LEVEL}:voicefleet_slo_error_budget:remaining_ratio{PERIOD}"
OVERRIDE = f"{LEVEL}:voicefleet_voiceagent_slo:info"
"""Recorded by a VoiceAgent's own SLO rules; the fleet-wide SLO rules skip agents that have it."""

LATENCY_SLO = "voice-to-voice-latency"
SESSION_SLO = "session-success"
LATENCY_ALERT = "VoiceFleetVoiceToVoiceLatencyBudgetBurn"
LATENCY_SLI = "voicefleet_agent_voice_to_voice_slow_turns"
SESSION_SLI = "voicefleet_agent_failed_sessions"
SESSION_ALERT = "VoiceFleetSessionSuccessBudgetBurn"


@dataclass(frozen=True)
class BurnWindow:
    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class AlertTier:
    severity: str
    windows: tuple[BurnWindow, ...]
    wait: str
    pace: str


PAGE = AlertTier("page", (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6)), "2m", "fast")
TICKET = AlertTier(
    "ticket", (BurnWindow("1d", "2h", 3), BurnWindow("3d", "6h", 1)), "15m", "slowly"
)
TIERS: tuple[AlertTier, ...] = (PAGE, TICKET)


@dataclass(frozen=True)
class SLOInput:
    """A VoiceAgent's `spec.slo`: voiceToVoiceSeconds, voiceToVoiceObjective,
    sessionSuccessObjective."""

    voice_to_voice_seconds: float = config.DEFAULT_VOICE_TO_VOICE_SECONDS
    voice_to_voice_objective: float = config.DEFAULT_VOICE_TO_VOICE_OBJECTIVE
    session_success_objective: float = config.DEFAULT_SESSION_SUCCESS_OBJECTIVE

    def __post_init__(self) -> None:
        # The share of slow turns is read from one histogram bucket: no bucket, no SLI.
        if self.voice_to_voice_seconds not in BUCKETS:
            allowed = ", ".join(f"{b:g}" for b in BUCKETS)
            raise ValueError(
                f"slo.voiceToVoiceSeconds must be one of the latency bucket bounds "
                f"({allowed}); got {self.voice_to_voice_seconds:g}"
            )
        for field, value in (
            ("voiceToVoiceObjective", self.voice_to_voice_objective),
            ("sessionSuccessObjective", self.session_success_objective),
        ):
            if not 0 < value <= 1:
                raise ValueError(f"slo.{field} must be in (0, 1]; got {value:g}")


@dataclass(frozen=True)
class Scope:
    """The series one set of SLO rules covers."""

    name: str
    matchers: tuple[str, ...] = ()
    """Added to every selector: one agent's namespace and agent label, or nothing."""
    skip_overridden: bool = False
    """Leave out agents whose VoiceAgent has its own SLO rules."""

    def apply(self, expr: str) -> str:
        if not self.skip_overridden:
            return expr
        return f"(\n{indent(expr)}\n)\nunless on ({by(SLO_LABELS)})\n  {OVERRIDE}"


FLEET = Scope("fleet", skip_overridden=True)


def agent_scope(namespace: str, agent: str) -> Scope:
    return Scope(f"{namespace}-{agent}", (eq("namespace", namespace), eq("agent", agent)))


Ratio = Callable[[str, tuple[str, ...]], str]


@dataclass(frozen=True)
class SLO:
    """One objective: its error ratio over a window, how good it must be, and how it reads."""

    name: str
    alert: str
    sli: str
    objective: float
    error_ratio: Ratio
    labels: Mapping[str, str]
    summary: str
    description: str

    @property
    def budget(self) -> float:
        return 1 - self.objective

    def sli_record(self, window: str) -> str:
        return sli_record(self.sli, window)


def sli_record(sli: str, window: str) -> str:
    """Name of the recorded error ratio of an SLI over a window."""
    return f"{LEVEL}:{sli}:ratio_rate{window}"


def percent(ratio: float) -> str:
    return f"{number(ratio * 100)}%"


def latency_slo(threshold: float, objective: float) -> SLO:
    """Share of turns whose voice-to-voice latency exceeds `threshold` seconds."""
    bound = le(threshold)

    def ratio(window: str, matchers: tuple[str, ...]) -> str:
        fast = selector(f"{VOICE_TO_VOICE}_bucket", *matchers, eq("le", bound))
        total = selector(f"{VOICE_TO_VOICE}_count", *matchers)
        return (
            f"1 - (\n  sum by ({by(SLO_LABELS)}) (rate({fast}[{window}]))\n/\n"
            f"  sum by ({by(SLO_LABELS)}) (rate({total}[{window}]))\n)"
        )

    seconds = f"{threshold:g} s"
    return SLO(
        name=LATENCY_SLO,
        alert=LATENCY_ALERT,
        sli=LATENCY_SLI,
        objective=objective,
        error_ratio=ratio,
        labels={"slo": LATENCY_SLO, "threshold": bound},
        summary="Voice-to-voice latency of {{ $labels.namespace }}/{{ $labels.agent }}",
        description=(
            f"Turns slower than {seconds} use the error budget {{{{ $value | humanize }}}}× "
            f"as fast as the objective allows ({percent(objective)} of turns within {seconds} "
            f"over {PERIOD_DAYS} days)."
        ),
    )


def session_slo(objective: float) -> SLO:
    """Share of sessions that ended with outcome="failed"."""

    def ratio(window: str, matchers: tuple[str, ...]) -> str:
        failed = selector(SESSIONS, *matchers, eq("outcome", "failed"))
        total = f"sum by ({by(SLO_LABELS)}) (rate({selector(SESSIONS, *matchers)}[{window}]))"
        # A worker that never failed has no failed series yet: count it as zero failures.
        return (
            f"(\n  sum by ({by(SLO_LABELS)}) (rate({failed}[{window}]))\nor\n  0 * {total}\n)\n"
            f"/\n  {total}"
        )

    return SLO(
        name=SESSION_SLO,
        alert=SESSION_ALERT,
        sli=SESSION_SLI,
        objective=objective,
        error_ratio=ratio,
        labels={"slo": SESSION_SLO},
        summary="Session success of {{ $labels.namespace }}/{{ $labels.agent }}",
        description=(
            f"Failed sessions use the error budget {{{{ $value | humanize }}}}× as fast as the "
            f"objective allows ({percent(objective)} of sessions end without error over "
            f"{PERIOD_DAYS} days)."
        ),
    )


def slos(spec: SLOInput) -> tuple[SLO, ...]:
    return (
        latency_slo(spec.voice_to_voice_seconds, spec.voice_to_voice_objective),
        session_slo(spec.session_success_objective),
    )


def recording(record: str, expr: str, labels: Mapping[str, str] | None = None) -> Rule:
    rule: Rule = {"record": record, "expr": expr}
    if labels:
        rule["labels"] = dict(labels)
    return rule


def runbook_url(alert: str) -> str:
    return f"{config.RUNBOOK_BASE_URL}/{alert}.md"


def alerting(
    alert: str, expr: str, wait: str, severity: str, summary: str, description: str
) -> Rule:
    return {
        "alert": alert,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(alert),
        },
    }


def sli_rule(slo: SLO, scope: Scope, window: str) -> Rule:
    expr = scope.apply(slo.error_ratio(window, scope.matchers))
    return recording(slo.sli_record(window), expr, slo.labels)


def burn_rate(slo: SLO, scope: Scope, window: str) -> str:
    return selector(f"{BURN_RATE}{window}", eq("slo", slo.name), *scope.matchers)


def burn_rate_rule(slo: SLO, scope: Scope, window: str) -> Rule:
    sli = selector(slo.sli_record(window), *scope.matchers)
    return recording(
        f"{BURN_RATE}{window}", scope.apply(f"{sli} / {number(slo.budget)}"), slo.labels
    )


def alert_rule(slo: SLO, scope: Scope, tier: AlertTier) -> Rule:
    conditions = [
        f"(\n  {burn_rate(slo, scope, w.long)} > {number(w.factor)}\nand\n"
        f"  {burn_rate(slo, scope, w.short)} > {number(w.factor)}\n)"
        for w in tier.windows
    ]
    expr = scope.apply("\nor\n".join(conditions))
    summary = f"{slo.summary} burns its error budget {tier.pace}"
    return alerting(slo.alert, expr, tier.wait, tier.severity, summary, slo.description)


def period_rules(slo: SLO, scope: Scope) -> list[Rule]:
    """Error ratio over the SLO period, the objective and the share of budget left."""
    sli = selector(slo.sli_record(PERIOD), *scope.matchers)
    objective = f"{number(slo.objective)} * group by ({by(SLO_LABELS)}) ({sli})"
    remaining = f"1 - {sli} / {number(slo.budget)}"
    return [
        sli_rule(slo, scope, PERIOD),
        recording(OBJECTIVE, scope.apply(objective), slo.labels),
        recording(BUDGET_REMAINING, scope.apply(remaining), slo.labels),
    ]


def slo_groups(slo: SLO, scope: Scope) -> list[Group]:
    """Two groups: SLIs, burn rates and alerts; the slower 30-day budget."""
    rules = [sli_rule(slo, scope, w) for w in WINDOWS]
    rules += [burn_rate_rule(slo, scope, w) for w in WINDOWS]
    rules += [alert_rule(slo, scope, tier) for tier in TIERS]
    prefix = f"voicefleet-slo-{scope.name}-{slo.name}"
    return [
        {"name": prefix, "rules": rules},
        {
            "name": f"{prefix}-budget",
            "interval": PERIOD_EVALUATION_INTERVAL,
            "rules": period_rules(slo, scope),
        },
    ]


def fleet_groups() -> list[Group]:
    """The default SLOs for every agent without rules of its own."""
    return [group for slo in slos(SLOInput()) for group in slo_groups(slo, FLEET)]


def agent_groups(namespace: str, agent: str, spec: SLOInput) -> list[Group]:
    """One agent's SLO rules, selected by its namespace and `agent` label."""
    scope = agent_scope(namespace, agent)
    marker = recording(OVERRIDE, "vector(1)", {"namespace": namespace, "agent": agent})
    groups = [group for slo in slos(spec) for group in slo_groups(slo, scope)]
    groups[0]["rules"].insert(0, marker)
    return groups


def prometheus_rule(
    namespace: str,
    agent: str,
    slo: SLOInput,
    *,
    agent_label: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A `monitoring.coreos.com/v1` PrometheusRule with one VoiceAgent's SLO rules.

    `agent` names the VoiceAgent (and the PrometheusRule); `agent_label` is the value of the
    `agent` label on its worker metrics, the LiveKit dispatch name (spec.agentName), when it
    differs. `labels` are added to the object's labels, e.g. what a Prometheus ruleSelector
    matches. The caller sets owner references.
    """
    if not namespace or not agent:
        raise ValueError("prometheus_rule needs a namespace and an agent name")
    metadata_labels = {
        "app.kubernetes.io/name": "voicefleet-slo",
        "app.kubernetes.io/managed-by": "voicefleet",
        "voicefleet.io/agent": agent,
        **(labels or {}),
    }
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": f"{agent}-slo", "namespace": namespace, "labels": metadata_labels},
        "spec": {"groups": agent_groups(namespace, agent_label or agent, slo)},
    }
