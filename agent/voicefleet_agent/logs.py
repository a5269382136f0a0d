"""Structured JSON logs that carry neither what people said nor secrets.

The framework formats records as JSON (its `start` command's default) and marks conversation
content with `lk.pii.*` fields; this filter blanks those, and any secret value from the
environment, unless VOICEFLEET_LOG_TRANSCRIPTS=true asks for transcripts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"
TRANSCRIPTS_VARIABLE = "VOICEFLEET_LOG_TRANSCRIPTS"
SECRET_VARIABLES = (
    "LIVEKIT_API_SECRET",
    "DEEPGRAM_API_KEY",
    "GOOGLE_API_KEY",
    "OPENAI_API_KEY",
)
# Record fields that hold conversation content besides the framework's lk.pii.* ones.
CONTENT_FIELDS = frozenset({"text_sent", "user_transcript", "transcript", "input_text"})
# Messages that embed the text being synthesized.
_CONTENT_IN_MESSAGE = re.compile(r"(for text: ).*", re.DOTALL)
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def transcripts_allowed(env: Mapping[str, str]) -> bool:
    return env.get(TRANSCRIPTS_VARIABLE, "").strip().lower() == "true"


class RedactingFilter(logging.Filter):
    """Blanks conversation content and secret values in records before any handler sees them."""

    def __init__(self, env: Mapping[str, str], extra_secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._keep_content = transcripts_allowed(env)
        names = [*SECRET_VARIABLES, *extra_secrets]
        self._secrets = [v for name in names if len(v := env.get(name, "")) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._keep_content:
            for key in list(record.__dict__):
                if key not in _RESERVED and (key.startswith("lk.pii.") or key in CONTENT_FIELDS):
                    setattr(record, key, REDACTED)
        message = record.getMessage()
        clean = (
            message if self._keep_content else _CONTENT_IN_MESSAGE.sub(r"\1" + REDACTED, message)
        )
        clean = self._scrub(clean)
        if clean != message:
            record.msg, record.args = clean, None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, self._scrub(value))
        return True

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def install_redaction(env: Mapping[str, str], extra_secrets: Iterable[str] = ()) -> None:
    """Attach the filter to every root handler (idempotent); `extra_secrets` names more
    variables whose values are secret (the tools' header variables)."""
    names = list(extra_secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(env, names))
