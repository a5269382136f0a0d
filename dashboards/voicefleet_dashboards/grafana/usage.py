"""Usage: what each agent consumes from its providers — LLM tokens, TTS characters, STT audio."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from voicefleet_dashboards import metrics as m
from voicefleet_dashboards.grafana.panels import (
    RATE,
    Board,
    filtered,
    query,
    stat_panel,
    timeseries_panel,
)
from voicefleet_dashboards.promql import by

WHO = "{{namespace}}/{{agent}} {{provider}} {{model}}"
PER_AGENT = ("namespace", "agent", "provider", "model")


def rate(metric: str, *extra: str) -> str:
    return f"sum by ({by((*PER_AGENT, *extra))}) (rate({filtered(metric)}[{RATE}]))"


def in_range(metric: str, *extra: str) -> str:
    return f"sum by ({by(('provider', *extra))}) (increase({filtered(metric)}[$__range]))"


def llm_row(board: Board) -> None:
    turns = f"sum by (namespace, agent) (rate({filtered(m.TURNS)}[{RATE}]))"
    tokens = f"sum by (namespace, agent) (rate({filtered(m.LLM_TOKENS)}[{RATE}]))"
    board.row("LLM").add(
        timeseries_panel(
            "LLM tokens per second",
            "Prompt and completion tokens per second, per agent, provider and model.",
            "suffix: tokens/s",
            [query(rate(m.LLM_TOKENS, "kind"), WHO + " {{kind}}")],
        ),
        stat_panel(
            "LLM tokens in range",
            "Tokens used in the dashboard's time range, per provider and kind.",
            units.Short,
            [query(in_range(m.LLM_TOKENS, "kind"), "{{provider}} {{kind}}", instant=True)],
            size=(6, 8),
        ),
        timeseries_panel(
            "LLM tokens per turn",
            "Tokens (prompt and completion) per answered turn. Growing prompts show up here "
            "first: long conversations resend their history on every turn.",
            units.Short,
            [query(f"{tokens}\n/\n{turns}", "{{namespace}}/{{agent}}")],
            size=(6, 8),
        ),
    )


def speech_row(board: Board) -> None:
    board.row("Speech").add(
        timeseries_panel(
            "TTS characters per second",
            "Characters sent to text-to-speech per second, per agent, provider and model.",
            "suffix: chars/s",
            [query(rate(m.TTS_CHARACTERS), WHO)],
        ),
        stat_panel(
            "TTS characters in range",
            "Characters synthesized in the dashboard's time range, per provider and model.",
            units.Short,
            [query(in_range(m.TTS_CHARACTERS, "model"), "{{provider}} {{model}}", instant=True)],
            size=(6, 8),
        ),
        stat_panel(
            "STT audio in range",
            "Audio transcribed in the dashboard's time range, per provider and model.",
            units.Seconds,
            [query(in_range(m.STT_AUDIO_SECONDS, "model"), "{{provider}} {{model}}", instant=True)],
            size=(6, 8),
        ),
        timeseries_panel(
            "STT audio transcribed",
            "Seconds of audio transcribed per second of wall time, per agent, provider and "
            "model: about the number of audio streams being transcribed at once.",
            units.Short,
            [query(rate(m.STT_AUDIO_SECONDS), WHO)],
            size=(24, 8),
        ),
    )


def dashboard() -> models.Dashboard:
    board = Board(
        "voicefleet-usage",
        "voicefleet / Usage",
        "Provider usage per agent: LLM tokens, TTS characters and STT audio seconds.",
        m.TURNS,
    )
    llm_row(board)
    speech_row(board)
    return board.build()
