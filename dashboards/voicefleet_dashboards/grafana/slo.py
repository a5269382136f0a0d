"""SLO: error budget left, burn rate per window, alert state, and the SLIs per region."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from voicefleet_dashboards import config, slo
from voicefleet_dashboards import metrics as m
from voicefleet_dashboards.grafana.panels import (
    AGENT,
    NAMESPACE,
    RATE,
    Board,
    filtered,
    query,
    stat_panel,
    state_panel,
    thresholds,
    timeseries_panel,
)
from voicefleet_dashboards.promql import by, eq, number, regex, selector

AGENT_LEGEND = "{{namespace}}/{{agent}}"
REGION_LEGEND = "{{namespace}}/{{agent}} {{region}}"
TIMES = "suffix:×"
BUDGET_LEFT = thresholds((0, "orange"), (0.25, "green"), base="red")
FACTORS = sorted(w.factor for tier in slo.TIERS for w in tier.windows)
BURN_LEVELS = thresholds(*zip(FACTORS, ("blue", "yellow", "orange", "red"), strict=True))


def tiers_text() -> str:
    """The alert factors per tier, e.g. 14.4 (1h/5m) and 6 (6h/30m) → page."""
    return "; ".join(
        " and ".join(f"{number(w.factor)} ({w.long}/{w.short})" for w in tier.windows)
        + f" → {tier.severity}"
        for tier in slo.TIERS
    )


def recorded(metric: str, name: str) -> str:
    """A recorded SLO series of one objective; SLO series carry no region label."""
    return selector(metric, NAMESPACE, AGENT, eq("slo", name))


def budget_row(board: Board) -> None:
    board.row("Error budget").add(
        stat_panel(
            "Voice-to-voice latency: budget left",
            f"Share of the {slo.PERIOD} error budget of the latency SLO still unspent: 100% "
            "means no turn was slower than the threshold, 0% means the objective is missed.",
            units.PercentUnit,
            [query(recorded(slo.BUDGET_REMAINING, slo.LATENCY_SLO), AGENT_LEGEND, instant=True)],
            limits=BUDGET_LEFT,
        ),
        stat_panel(
            "Session success: budget left",
            f"Share of the {slo.PERIOD} error budget of the session-success SLO still unspent.",
            units.PercentUnit,
            [query(recorded(slo.BUDGET_REMAINING, slo.SESSION_SLO), AGENT_LEGEND, instant=True)],
            limits=BUDGET_LEFT,
        ),
        stat_panel(
            "Objectives",
            "Objective of each SLO: the VoiceAgent's spec.slo, or the fleet-wide default for "
            "agents without their own rules.",
            units.PercentUnit,
            [
                query(
                    selector(slo.OBJECTIVE, NAMESPACE, AGENT),
                    AGENT_LEGEND + " {{slo}}",
                    instant=True,
                )
            ],
            size=(12, 6),
        ),
        timeseries_panel(
            "Error budget left over time",
            f"Budget left over the trailing {slo.PERIOD}; a steady fall shows a slow burn "
            "that only ticket alerts catch.",
            units.PercentUnit,
            [
                query(
                    selector(slo.BUDGET_REMAINING, NAMESPACE, AGENT),
                    AGENT_LEGEND + " {{slo}}",
                )
            ],
            size=(24, 8),
            limits=BUDGET_LEFT,
            minimum=None,
        ),
    )


def burn_panel(name: str, title: str) -> timeseries.Panel:
    return timeseries_panel(
        f"{title}: burn rate",
        "How many times faster than sustainable the error budget is spent, per window. "
        f"Dashed lines are the alert factors: {tiers_text()}. Both windows of a pair must "
        "exceed the factor.",
        TIMES,
        [query(recorded(f"{slo.BURN_RATE}{w}", name), f"{w} {AGENT_LEGEND}") for w in slo.WINDOWS],
        limits=BURN_LEVELS,
    )


def burn_row(board: Board) -> None:
    board.row("Burn rates").add(
        burn_panel(slo.LATENCY_SLO, "Voice-to-voice latency"),
        burn_panel(slo.SESSION_SLO, "Session success"),
        timeseries_panel(
            "Error ratios (1h)",
            "The SLIs: share of turns slower than the threshold and share of sessions that "
            "failed, over the last hour.",
            units.PercentUnit,
            [
                query(
                    selector(slo.sli_record(slo.LATENCY_SLI, "1h"), NAMESPACE, AGENT),
                    "slow turns (> {{threshold}} s) " + AGENT_LEGEND,
                ),
                query(
                    selector(slo.sli_record(slo.SESSION_SLI, "1h"), NAMESPACE, AGENT),
                    "failed sessions " + AGENT_LEGEND,
                ),
            ],
            size=(24, 8),
        ),
    )


def alerts_row(board: Board) -> None:
    firing = eq("alertstate", "firing")
    slo_alerts = regex("alertname", f"{slo.LATENCY_ALERT}|{slo.SESSION_ALERT}")
    any_alert = regex("alertname", "VoiceFleet.*")
    board.row("Alerts").add(
        state_panel(
            "SLO alerts firing",
            "Burn-rate alerts of the selected agents over time, by severity (page or ticket).",
            units.Short,
            [
                query(
                    f"max by (alertname, severity, {by(m.SLO_LABELS)}) "
                    f"({selector('ALERTS', slo_alerts, firing, NAMESPACE, AGENT)})",
                    "{{alertname}} {{severity}} " + AGENT_LEGEND,
                )
            ],
            limits=thresholds((1, "red")),
        ),
        state_panel(
            "voicefleet alerts firing",
            "Every voicefleet alert firing for the selected namespaces and agents, including "
            "capacity, LiveKit and operator alerts.",
            units.Short,
            [
                query(
                    "max by (alertname, severity) "
                    f"({selector('ALERTS', any_alert, firing, NAMESPACE, AGENT)})",
                    "{{alertname}} {{severity}}",
                )
            ],
            limits=thresholds((1, "red")),
        ),
    )


def region_row(board: Board) -> None:
    fleet = by(m.FLEET_LABELS)
    fast = filtered(f"{m.VOICE_TO_VOICE}_bucket", 'le="$threshold"')
    total = filtered(f"{m.VOICE_TO_VOICE}_count")
    sessions = f"sum by ({fleet}) (rate({filtered(m.SESSIONS)}[{RATE}]))"
    failed = f"sum by ({fleet}) (rate({filtered(m.SESSIONS, eq('outcome', 'failed'))}[{RATE}]))"
    board.row("SLIs by region").add(
        timeseries_panel(
            "Turns slower than $threshold s by region",
            "Share of turns slower than the threshold picked above, per region: shows where "
            "a latency burn comes from.",
            units.PercentUnit,
            [
                query(
                    f"1 - (\n  sum by ({fleet}) (rate({fast}[{RATE}]))\n/\n"
                    f"  sum by ({fleet}) (rate({total}[{RATE}]))\n)",
                    REGION_LEGEND,
                )
            ],
        ),
        timeseries_panel(
            "Failed sessions by region",
            "Share of sessions that ended with an error, per region.",
            units.PercentUnit,
            [query(f"{failed}\n/\n{sessions}", REGION_LEGEND)],
        ),
    )


def threshold_variable() -> builders.CustomVariable:
    values = [m.le(b) for b in m.BUCKETS]
    default = m.le(config.DEFAULT_VOICE_TO_VOICE_SECONDS)
    return (
        builders.CustomVariable("threshold")
        .label("Latency threshold (s)")
        .description("Bucket bound used by the per-region latency panel.")
        .values(",".join(values))
        .current(models.VariableOption(selected=True, text=default, value=default))
        .options([models.VariableOption(selected=v == default, text=v, value=v) for v in values])
    )


def dashboard() -> models.Dashboard:
    board = Board(
        "voicefleet-slo",
        "voicefleet / SLO",
        f"Voice-to-voice latency and session-success SLOs: {slo.PERIOD_DAYS}-day "
        "error budget, burn rates and alerts.",
        m.TURNS,
    )
    board.variable(threshold_variable())
    budget_row(board)
    burn_row(board)
    alerts_row(board)
    region_row(board)
    return board.build()
