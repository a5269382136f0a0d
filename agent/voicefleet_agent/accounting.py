"""Turn accounting of the load test, from what a caller heard around each of its utterances.

A turn's latency means something only if the agent was silent while the caller spoke and then
answered. Otherwise the first agent sample after the caller's last one is the tail of a reply
that was already playing, and the turn would show a few milliseconds. So every turn is judged
from the agent's audio (and its transcripts) against the caller's speech before any latency is
taken, and only clean answers carry one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

REPLY_GAP_SECONDS = 0.5
"""Agent silence that separates two replies; shorter gaps are pauses inside one reply."""


class Outcome(enum.StrEnum):
    ANSWERED = "answered"
    """The agent was silent while the caller spoke and replied after it had finished."""
    EARLY = "early"
    """The agent began to speak before the caller had finished (it answered a pause)."""
    OVERLAPPED = "overlapped"
    """The agent was still speaking when the caller began (an earlier reply ran on)."""
    FAILED = "failed"
    """No reply was heard."""

    @property
    def replied(self) -> bool:
        return self is not Outcome.FAILED


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    heard: float | None
    """The first audible agent sample after the caller's last one, if any."""


@dataclass(frozen=True)
class AgentText:
    """One final transcript of the agent's speech and when its stream began (as it played)."""

    text: str
    started_at: float


def judge(
    started: float,
    ended: float,
    until: float,
    audible: Sequence[float],
    agent_texts: Sequence[AgentText] = (),
    gap: float = REPLY_GAP_SECONDS,
) -> Verdict:
    """Judge one utterance spoken from `started` to `ended`, listened to until `until`.

    `audible` holds the wall-clock times of agent audio heard above the audibility threshold,
    in order. A transcript of the agent that began while the caller spoke is a reply that
    started then, even if it was cut before it became audible."""
    heard = next((a for a in audible if ended < a <= until), None)
    during = [a for a in audible if started <= a <= ended]
    spoke_over = any(t.text.strip() and started <= t.started_at <= ended for t in agent_texts)
    if during:
        ran_on = burst_start(audible, during[0], gap) < started
        return Verdict(Outcome.OVERLAPPED if ran_on else Outcome.EARLY, heard)
    if spoke_over:
        return Verdict(Outcome.EARLY, heard)
    return Verdict(Outcome.FAILED if heard is None else Outcome.ANSWERED, heard)


def burst_start(audible: Sequence[float], at: float, gap: float) -> float:
    """Start of the stretch of agent audio that holds `at`: sounds no more than `gap` apart."""
    earlier = [a for a in audible if a <= at]
    start = at
    for a in reversed(earlier):
        if start - a > gap:
            break
        start = a
    return start


def reply_text(agent_texts: Sequence[AgentText], started: float, until: float) -> str:
    """What the agent said in answer to the utterance begun at `started`: its final
    transcripts that began between then and the caller's next utterance."""
    return " ".join(t.text.strip() for t in agent_texts if started <= t.started_at < until)
