"""Usage: what each agent consumes from its providers — LLM tokens, TTS characters, STT audio —
how long its calls last, and what that costs at the chart's prices."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from voicefleet_dashboards import cost
from voicefleet_dashboards import metrics as m
from voicefleet_dashboards.grafana.panels import (
    FILTER,
    RATE,
    Board,
    filtered,
    query,
    stat_panel,
    timeseries_panel,
)
from voicefleet_dashboards.promql import by, selector

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


def per_agent(record: str) -> str:
    """A recorded cost series, filtered like the panels (cost records keep no region)."""
    return selector(record, *FILTER[:2])


def conversation_row(board: Board) -> None:
    minutes = (
        f"sum by (namespace, agent) (increase({filtered(m.CONVERSATION_SECONDS)}[$__range])) / 60"
    )
    board.row("Conversations").add(
        stat_panel(
            "Conversation minutes in range",
            "Minutes of calls that ended in the dashboard's time range, per agent: the unit "
            "conversation time is billed in.",
            units.Short,
            [query(minutes, "{{namespace}}/{{agent}}", instant=True)],
            size=(8, 8),
        ),
        timeseries_panel(
            "Call duration",
            "Median and 95th percentile length of the calls that ended, per agent.",
            units.Seconds,
            [
                query(
                    f"histogram_quantile({q}, sum by (namespace, agent, le) "
                    f"(rate({filtered(m.SESSION_DURATION + '_bucket')}[{RATE}])))",
                    "{{namespace}}/{{agent}} p" + str(round(q * 100)),
                )
                for q in (0.5, 0.95)
            ],
            size=(16, 8),
        ),
    )


def cost_row(board: Board) -> None:
    board.row("Cost").add(
        timeseries_panel(
            "Cost per hour, per agent and provider",
            "Usage priced at the chart's `pricing` values, per hour, in its currency; the "
            'provider "voicefleet" is the platform\'s own cost per conversation minute.',
            units.Short,
            [query(f"{per_agent(cost.COST)} * 3600", "{{namespace}}/{{agent}} {{provider}}")],
        ),
        timeseries_panel(
            "Cost per call",
            "Cost of an agent's usage divided by the calls that ended, over the rate window.",
            units.Short,
            [query(per_agent(cost.COST_PER_SESSION), "{{namespace}}/{{agent}}")],
        ),
        timeseries_panel(
            "Usage without a price",
            "Usage per second of models the chart's `pricing` does not list: costed at zero, "
            "so the cost panels read low until a price is set.",
            units.Short,
            [
                query(
                    per_agent(cost.UNPRICED),
                    "{{namespace}}/{{agent}} {{usage}} {{provider}} {{model}}",
                )
            ],
            size=(24, 8),
        ),
    )


def dashboard() -> models.Dashboard:
    board = Board(
        "voicefleet-usage",
        "voicefleet / Usage",
        "Provider usage per agent: LLM tokens, TTS characters and STT audio seconds, call "
        "minutes and cost.",
        m.TURNS,
    )
    conversation_row(board)
    cost_row(board)
    llm_row(board)
    speech_row(board)
    return board.build()
