"""Names, labels and buckets of the metrics voicefleet exports, as listed in docs/metrics.md.

Everything the rules and dashboards select goes through these constants, so a renamed metric is
changed in one place and the tests compare this module with the document.
"""

from __future__ import annotations

from dataclasses import dataclass

# Shared by every latency histogram; each SLO threshold must be one of them.
BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1, 1.5, 2, 3, 5, 10)


def le(bound: float) -> str:
    """The `le` label value prometheus-client exposes for a bucket bound: 1 → "1.0"."""
    # Go-style float formatting; exponents only start above the largest bound we use.
    return repr(float(bound))


# Agent worker metrics (labels agent, region; the scrape adds namespace).
VOICE_TO_VOICE = "voicefleet_agent_voice_to_voice_seconds"
END_OF_TURN = "voicefleet_agent_end_of_turn_delay_seconds"
STT_DELAY = "voicefleet_agent_stt_delay_seconds"
LLM_TTFT = "voicefleet_agent_llm_ttft_seconds"
TTS_TTFB = "voicefleet_agent_tts_ttfb_seconds"
VAD_INFERENCE = "voicefleet_agent_vad_inference_seconds"
TURNS = "voicefleet_agent_turns_total"
INTERRUPTIONS = "voicefleet_agent_interruptions_total"
SESSIONS = "voicefleet_agent_sessions_total"
SESSION_DURATION = "voicefleet_agent_session_duration_seconds"
CONVERSATION_SECONDS = "voicefleet_agent_conversation_seconds_total"
PROVIDER_ERRORS = "voicefleet_agent_provider_errors_total"
TOOL_CALL = "voicefleet_agent_tool_call_seconds"
TOOL_ERRORS = "voicefleet_agent_tool_errors_total"
PROVIDER_FALLBACKS = "voicefleet_agent_provider_fallbacks_total"
LLM_TOKENS = "voicefleet_agent_llm_tokens_total"
TTS_CHARACTERS = "voicefleet_agent_tts_characters_total"
STT_AUDIO_SECONDS = "voicefleet_agent_stt_audio_seconds_total"
ACTIVE_SESSIONS = "voicefleet_agent_active_sessions"
DRAINING = "voicefleet_agent_draining"

# Operator metrics (labels namespace, agent, region).
RECONCILE_DURATION = "voicefleet_operator_reconcile_duration_seconds"
DESIRED_REPLICAS = "voicefleet_operator_desired_replicas"
REPLICAS = "voicefleet_operator_replicas"
READY_REPLICAS = "voicefleet_operator_ready_replicas"
MAX_REPLICAS = "voicefleet_operator_max_replicas"
DEMAND_SESSIONS = "voicefleet_operator_demand_sessions"
CAPACITY_SESSIONS = "voicefleet_operator_capacity_sessions"
SCALE_DECISIONS = "voicefleet_operator_scale_decisions_total"
LIVEKIT_POLL_DURATION = "voicefleet_operator_livekit_poll_duration_seconds"
LIVEKIT_POLL_ERRORS = "voicefleet_operator_livekit_poll_errors_total"
LIVEKIT_REACHABLE = "voicefleet_operator_livekit_reachable"
WEBHOOKS_RECEIVED = "voicefleet_operator_webhooks_received_total"
REDISPATCHES = "voicefleet_operator_redispatches_total"
JOB_REDISPATCHES = "voicefleet_agent_redispatches_total"

# Labels an SLO is evaluated over and the ones a fleet is broken down by.
SLO_LABELS: tuple[str, ...] = ("namespace", "agent")
FLEET_LABELS: tuple[str, ...] = ("namespace", "agent", "region")
PROVIDER_LABELS: tuple[str, ...] = ("provider", "model")


@dataclass(frozen=True)
class Stage:
    """One latency histogram of the voice pipeline."""

    key: str
    title: str
    metric: str
    by_provider: bool

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels its recording rules keep."""
        return FLEET_LABELS + PROVIDER_LABELS if self.by_provider else FLEET_LABELS


VOICE_TO_VOICE_STAGE = Stage("voice_to_voice", "Voice-to-voice", VOICE_TO_VOICE, False)
PIPELINE_STAGES: tuple[Stage, ...] = (
    Stage("end_of_turn", "End of turn", END_OF_TURN, False),
    Stage("stt", "STT final transcript", STT_DELAY, True),
    Stage("llm", "LLM first token", LLM_TTFT, True),
    Stage("tts", "TTS first byte", TTS_TTFB, True),
)
LATENCY_STAGES: tuple[Stage, ...] = (VOICE_TO_VOICE_STAGE, *PIPELINE_STAGES)
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)
