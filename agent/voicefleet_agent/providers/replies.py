"""Deterministic reply text of the keyless language models."""

from __future__ import annotations

import hashlib
import re

OFFLINE_LABEL = "(offline assistant)"

_FOLLOW_UPS = (
    "Tell me more about that.",
    "What would you like to do next?",
    "Is there anything else I can help with?",
    "Could you say a little more?",
)


def offline_reply(user_text: str) -> str:
    """A labelled reply that is a pure function of what the user said."""
    words = re.findall(r"[\w']+", user_text.lower())
    if not words:
        return f"{OFFLINE_LABEL} I did not catch that. Could you say it again?"
    digest = hashlib.sha256(" ".join(words).encode()).digest()
    follow_up = _FOLLOW_UPS[digest[0] % len(_FOLLOW_UPS)]
    noun = "word" if len(words) == 1 else "words"
    return f"{OFFLINE_LABEL} I heard {len(words)} {noun}, starting with {words[0]}. {follow_up}"


def simulated_reply(turn: int, words: int) -> str:
    """The simulated model's reply for a turn: `words` words long so speech length is known."""
    filler = " ".join(["okay"] * max(0, words - 4))
    return f"Simulated reply {turn}. {filler}".strip()


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized stream deltas that join back to the same text."""
    return re.findall(r"\S+\s*|\s+", text)
