"""Voice pipeline: voice-to-voice latency, each stage's share of it, interruptions, providers."""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from voicefleet_dashboards import config
from voicefleet_dashboards import metrics as m
from voicefleet_dashboards.grafana.panels import (
    RATE,
    Board,
    filtered,
    heatmap_panel,
    query,
    stat_panel,
    thresholds,
    timeseries_panel,
)
from voicefleet_dashboards.promql import by, eq, number
from voicefleet_dashboards.rules import (
    PROVIDER_ERRORS_PER_TURN,
    TOOL_ERRORS_PER_CALL,
    bucket_rate,
)

SLO_SECONDS = config.DEFAULT_VOICE_TO_VOICE_SECONDS
PERCENTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))


def quantile(stage: m.Stage, q: float, *keep: str) -> str:
    """A percentile from the recorded 5m bucket rates, aggregated over the selected fleets."""
    return (
        f"histogram_quantile({number(q)}, sum by ({by((*keep, 'le'))}) "
        f"({filtered(bucket_rate(stage))}))"
    )


def buckets(stage: m.Stage) -> str:
    return f"sum by (le) (increase({filtered(stage.metric + '_bucket')}[{RATE}]))"


def voice_to_voice_row(board: Board) -> None:
    stage = m.VOICE_TO_VOICE_STAGE
    fast = filtered(f"{stage.metric}_bucket", eq("le", m.le(SLO_SECONDS)))
    total = filtered(f"{stage.metric}_count")
    board.row("Voice-to-voice").add(
        timeseries_panel(
            "Voice-to-voice latency",
            "From the moment the user stops speaking to the first agent audio: median, 95th "
            f"and 99th percentile over 5m. The dashed line is the default SLO threshold "
            f"({SLO_SECONDS:g} s).",
            units.Seconds,
            [query(quantile(stage, q), label) for q, label in PERCENTILES],
            size=(18, 8),
            limits=thresholds((SLO_SECONDS, "red")),
        ),
        stat_panel(
            f"Turns slower than {SLO_SECONDS:g} s",
            "Share of turns in the dashboard's time range whose voice-to-voice latency "
            "exceeded the default SLO threshold.",
            units.PercentUnit,
            [
                query(
                    f"1 - sum(increase({fast}[$__range])) / sum(increase({total}[$__range]))",
                    "slower",
                    instant=True,
                )
            ],
            size=(6, 8),
            limits=thresholds((0.05, "red")),
        ),
        heatmap_panel(
            "Voice-to-voice distribution",
            "Turns per latency bucket over time; brighter cells hold more turns.",
            buckets(stage),
            size=(24, 8),
        ),
    )


def stage_rows(board: Board) -> None:
    stages = m.PIPELINE_STAGES
    board.row("Pipeline stages").add(
        timeseries_panel(
            "Stage latency p95",
            "95th percentile of each stage: end of speech → turn confirmed, → final "
            "transcript (STT), LLM request → first token, TTS request → first audio.",
            units.Seconds,
            [query(quantile(stage, 0.95), stage.title) for stage in stages],
            size=(24, 8),
        ),
        *[stage_panel(stage) for stage in stages],
    )
    board.row("Stage distributions").add(
        *[
            heatmap_panel(
                f"{stage.title} distribution",
                f"Requests per latency bucket of {stage.metric} over time.",
                buckets(stage),
                size=(6, 8),
            )
            for stage in stages
        ]
    )


def stage_panel(stage: m.Stage) -> timeseries.Panel:
    keep = m.PROVIDER_LABELS if stage.by_provider else ()
    who = "{{provider}} {{model}} " if stage.by_provider else ""
    split = ", by provider and model" if stage.by_provider else ""
    return timeseries_panel(
        f"{stage.title} latency",
        f"Median, 95th and 99th percentile of {stage.metric}{split}, over 5m.",
        units.Seconds,
        [query(quantile(stage, q, *keep), who + label) for q, label in PERCENTILES],
        size=(12, 8),
    )


def provider_rows(board: Board) -> None:
    turns = f"sum(rate({filtered(m.TURNS)}[{RATE}]))"
    board.row("Turns, interruptions and providers").add(
        timeseries_panel(
            "Turns and sessions",
            "Agent turns answered and sessions ended per second, by outcome.",
            units.OpsPerSecond,
            [
                query(turns, "turns"),
                query(
                    f"sum by (outcome) (rate({filtered(m.SESSIONS)}[{RATE}]))",
                    "sessions {{outcome}}",
                ),
            ],
        ),
        timeseries_panel(
            "Interruptions per turn",
            "Times the user spoke over the agent and stopped it, per answered turn. A rise "
            "often follows slow answers or too-eager end-of-turn detection.",
            units.PercentUnit,
            [
                query(
                    f"sum(rate({filtered(m.INTERRUPTIONS)}[{RATE}])) / {turns}",
                    "interruptions per turn",
                )
            ],
        ),
        timeseries_panel(
            "Provider errors",
            "Failed provider requests per second, by stage and provider.",
            units.RequestsPerSecond,
            [
                query(
                    f"sum by (stage, provider) (rate({filtered(m.PROVIDER_ERRORS)}[{RATE}]))",
                    "{{stage}} {{provider}}",
                )
            ],
        ),
        timeseries_panel(
            "Provider fallbacks",
            "Switches away from a provider to the next one in the chain, per second.",
            units.OpsPerSecond,
            [
                query(
                    f"sum by (stage, provider) (rate({filtered(m.PROVIDER_FALLBACKS)}[{RATE}]))",
                    "{{stage}} from {{provider}}",
                )
            ],
        ),
        timeseries_panel(
            "Provider errors per turn",
            "Failed requests per answered turn (5m), per fleet, stage and provider; the "
            "dashed line is the VoiceFleetProviderErrorRateHigh threshold.",
            units.PercentUnit,
            [
                query(
                    filtered(PROVIDER_ERRORS_PER_TURN),
                    "{{stage}} {{provider}} {{namespace}}/{{agent}} {{region}}",
                )
            ],
            limits=thresholds((config.PROVIDER_ERRORS_PER_TURN_ALERT, "red")),
        ),
        timeseries_panel(
            "VAD inference p95",
            "95th percentile of one voice-activity-detection inference. It runs on the "
            "worker's CPU: a rise points to CPU pressure.",
            units.Seconds,
            [
                query(
                    f"histogram_quantile(0.95, sum by (le) "
                    f"(rate({filtered(m.VAD_INFERENCE + '_bucket')}[{RATE}])))",
                    "p95",
                )
            ],
        ),
    )


def tool_rows(board: Board) -> None:
    tool_buckets = f"sum by (tool, le) (rate({filtered(m.TOOL_CALL + '_bucket')}[{RATE}]))"
    board.row("Tools").add(
        timeseries_panel(
            "Tool call latency",
            "Median and 95th percentile of each tool's calls (request sent → result or "
            "failure), over 5m. A call never outlasts its tool's timeoutSeconds.",
            units.Seconds,
            [
                query(f"histogram_quantile({number(q)}, {tool_buckets})", f"{{{{tool}}}} {label}")
                for q, label in PERCENTILES[:2]
            ],
            size=(12, 8),
        ),
        timeseries_panel(
            "Tool calls",
            "Tool calls per second, by tool.",
            units.OpsPerSecond,
            [
                query(
                    f"sum by (tool) (rate({filtered(m.TOOL_CALL + '_count')}[{RATE}]))",
                    "{{tool}}",
                )
            ],
            size=(12, 8),
        ),
        timeseries_panel(
            "Tool errors",
            "Failed tool calls per second, by tool and reason: timeout, http_status (status "
            "300 or above), too_large (response above maxResponseBytes) or connection.",
            units.RequestsPerSecond,
            [
                query(
                    f"sum by (tool, reason) (rate({filtered(m.TOOL_ERRORS)}[{RATE}]))",
                    "{{tool}} {{reason}}",
                )
            ],
            size=(12, 8),
        ),
        timeseries_panel(
            "Tool errors per call",
            "Share of each tool's calls that failed (5m), per fleet; callers heard the failure "
            "line. The dashed line is the VoiceFleetToolErrorRateHigh threshold.",
            units.PercentUnit,
            [query(filtered(TOOL_ERRORS_PER_CALL), "{{tool}} {{namespace}}/{{agent}} {{region}}")],
            size=(12, 8),
            limits=thresholds((config.TOOL_ERRORS_PER_CALL_ALERT, "red")),
        ),
    )


def dashboard() -> models.Dashboard:
    board = Board(
        "voicefleet-voice-pipeline",
        "voicefleet / Voice pipeline",
        "Voice-to-voice latency, its stages, interruptions and provider errors.",
        m.TURNS,
    )
    voice_to_voice_row(board)
    stage_rows(board)
    provider_rows(board)
    tool_rows(board)
    return board.build()
