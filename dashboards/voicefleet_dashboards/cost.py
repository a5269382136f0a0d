"""Cost from the usage counters and the cluster's unit prices.

Prices are configuration, not code: the chart renders `pricing` values into `PRICE` series, one
per provider, model and unit (the `voicefleet-prices` group of its PrometheusRule). The rules
here multiply each usage rate by its price. Usage with no price is costed at zero and recorded
as unpriced, so a missing price shows up instead of being guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicefleet_dashboards import config
from voicefleet_dashboards.metrics import (
    CONVERSATION_SECONDS,
    FLEET_LABELS,
    LLM_TOKENS,
    SESSIONS,
    STT_AUDIO_SECONDS,
    TTS_CHARACTERS,
)
from voicefleet_dashboards.promql import by, eq, selector
from voicefleet_dashboards.slo import Rule, alerting, recording

WINDOW = config.RATE_WINDOW
PRICE = "voicefleet:unit_price:configured"
"""Price of one unit (a token, an audio second, a character, a conversation second)."""
PLATFORM = "voicefleet"
"""The `provider` label of the platform's own cost per conversation minute."""
AGENT_LABELS = ("namespace", "agent")
COST = f"namespace_agent_provider:voicefleet_agent_cost:rate{WINDOW}"
"""Cost per second of each agent, per provider (the platform's own included)."""
AGENT_COST = f"namespace_agent:voicefleet_agent_cost:rate{WINDOW}"
COST_PER_SESSION = f"namespace_agent:voicefleet_agent_cost_per_session:ratio_rate{WINDOW}"
UNPRICED = f"namespace_agent_provider_model:voicefleet_agent_unpriced_usage:rate{WINDOW}"
UNPRICED_ALERT = "VoiceFleetUsageUnpriced"


@dataclass(frozen=True)
class Usage:
    """A usage counter and the price unit it is billed in."""

    name: str
    metric: str
    unit: str
    keys: tuple[str, ...]
    """Labels a price matches on."""

    @property
    def labels(self) -> tuple[str, ...]:
        return (*FLEET_LABELS, *self.keys)

    @property
    def record(self) -> str:
        return f"{'_'.join(self.labels)}:voicefleet_agent_{self.name}_cost:rate{WINDOW}"

    def rate(self) -> str:
        return f"sum by ({by(self.labels)}) (rate({self.metric}[{WINDOW}]))"

    def price(self) -> str:
        return selector(PRICE, eq("unit", self.unit))


USAGES = (
    Usage("llm", LLM_TOKENS, "llm_token", ("provider", "model", "kind")),
    Usage("stt", STT_AUDIO_SECONDS, "stt_audio_second", ("provider", "model")),
    Usage("tts", TTS_CHARACTERS, "tts_character", ("provider", "model")),
)
CONVERSATION = Usage("platform", CONVERSATION_SECONDS, "conversation_second", ())


def priced(usage: Usage) -> str:
    """Usage rate times its price; usage without a price costs zero."""
    keys = by(usage.keys)
    rate = usage.rate()
    return (
        f"{rate}\n* on ({keys}) group_left ()\n{usage.price()}\n"
        f"or on ({by(usage.labels)})\n{rate} * 0"
    )


PLATFORM_COST = f"namespace_agent_region_provider:voicefleet_agent_platform_cost:rate{WINDOW}"


def platform_cost() -> str:
    """Conversation seconds times the platform's price, under provider="voicefleet"."""
    rate = CONVERSATION.rate()
    cost = (
        f"{rate}\n* on () group_left ()\n{CONVERSATION.price()}\n"
        f"or on ({by(FLEET_LABELS)})\n{rate} * 0"
    )
    return f'label_replace(\n{cost},\n"provider", "{PLATFORM}", "", ""\n)'


def unpriced(usage: Usage) -> Rule:
    expr = (
        f"sum by ({by((*AGENT_LABELS, 'provider', 'model'))}) (\n{usage.rate()}\n"
        f"unless on ({by(usage.keys)})\n{usage.price()}\n)"
    )
    return recording(UNPRICED, expr, {"usage": usage.name})


def cost_rules() -> list[Rule]:
    """Per usage, then per provider and agent, then per session. A group evaluates its rules
    in order, so each rule reads the ones above it from the same evaluation."""
    parts = [*(usage.record for usage in USAGES), PLATFORM_COST]
    every_part = selector("", f'__name__=~"{"|".join(parts)}"')
    sessions = f"sum by ({by(AGENT_LABELS)}) (rate({SESSIONS}[{WINDOW}]))"
    return [
        *(recording(usage.record, priced(usage)) for usage in USAGES),
        recording(PLATFORM_COST, platform_cost()),
        recording(COST, f"sum by ({by((*AGENT_LABELS, 'provider'))}) ({every_part})"),
        recording(AGENT_COST, f"sum by ({by(AGENT_LABELS)}) ({COST})"),
        # Sessions that ended in the window; none ended, no figure (rather than infinity).
        recording(COST_PER_SESSION, f"{AGENT_COST}\n/\n({sessions} > 0)"),
        *(unpriced(usage) for usage in USAGES),
    ]


def unpriced_alert() -> Rule:
    return alerting(
        UNPRICED_ALERT,
        f"{UNPRICED} > 0",
        "1h",
        "ticket",
        "{{ $labels.namespace }}/{{ $labels.agent }} uses {{ $labels.provider }} "
        "{{ $labels.model }} without a price",
        "Its {{ $labels.usage }} usage has no entry in the chart's pricing values, so it is "
        "costed at zero: cost per agent and per call read low until a price is set.",
    )
