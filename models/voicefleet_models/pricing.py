"""Unit prices, and what one call cost at them.

The prices are the cluster's, set once in the chart's `pricing` values: Prometheus prices the
fleet's usage with them, and the operator hands them to every worker in a ConfigMap it keeps
current (mounted, so a price change reaches running workers without a rollout, at the path in
PRICING_FILE_VARIABLE). A worker reads them as each call ends (voicefleet_agent.pricing), for
the estimate on that call's log line and trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from voicefleet_models.base import Model

PRICING_FILE_VARIABLE = "VOICEFLEET_PRICING_FILE"
UsageKey = tuple[str, str, str, str]
"""(unit, provider, model, kind): a unit is llm_tokens, stt_audio_seconds or tts_characters."""


class Priced(Model):
    provider: str = Field(min_length=1, max_length=40)
    """Provider as the VoiceAgent's pipeline names it."""
    model: str = Field(min_length=1, max_length=200)
    """Model as the worker's usage metrics label it."""


class LLMPrice(Priced):
    prompt_per_1k_tokens: float = Field(ge=0, alias="promptPer1kTokens")
    completion_per_1k_tokens: float = Field(ge=0, alias="completionPer1kTokens")


class STTPrice(Priced):
    per_minute: float = Field(ge=0)
    """Per minute of audio transcribed."""


class TTSPrice(Priced):
    # The chart's spelling, not the generated camelCase: "1M", "1k".
    per_1m_characters: float = Field(ge=0, alias="per1MCharacters")


class Pricing(Model):
    """The chart's `pricing` values."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    agent_minute: float = Field(default=0, ge=0)
    """The platform's own cost per conversation minute; 0 leaves it out."""
    llm: list[LLMPrice] = Field(default_factory=list)
    stt: list[STTPrice] = Field(default_factory=list)
    tts: list[TTSPrice] = Field(default_factory=list)

    def unit_prices(self) -> dict[UsageKey, float]:
        """Price of a single unit, keyed like a session's usage."""
        prices: dict[UsageKey, float] = {}
        for llm in self.llm:
            prices[("llm_tokens", llm.provider, llm.model, "prompt")] = (
                llm.prompt_per_1k_tokens / 1000
            )
            prices[("llm_tokens", llm.provider, llm.model, "completion")] = (
                llm.completion_per_1k_tokens / 1000
            )
        for stt in self.stt:
            prices[("stt_audio_seconds", stt.provider, stt.model, "")] = stt.per_minute / 60
        for tts in self.tts:
            prices[("tts_characters", tts.provider, tts.model, "")] = tts.per_1m_characters / 1e6
        return prices

    def estimate(self, usage: Mapping[UsageKey, float], seconds: float) -> Estimate:
        """What a call of `seconds` that used `usage` cost; usage without a price costs zero
        and is named, never guessed."""
        prices = self.unit_prices()
        cost = seconds / 60 * self.agent_minute
        unpriced = []
        for key, amount in usage.items():
            if key in prices:
                cost += amount * prices[key]
            elif amount > 0:
                unpriced.append("/".join(filter(None, key)))
        return Estimate(round(cost, 6), self.currency, tuple(sorted(unpriced)))


@dataclass(frozen=True)
class Estimate:
    cost: float
    currency: str
    unpriced: tuple[str, ...]
