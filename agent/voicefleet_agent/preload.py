"""Imported once in the worker's forkserver (`preload_modules`), so every job process inherits
this one-time work copy-on-write instead of paying for it again: Silero's plugin and
onnxruntime, which `prewarm` would import, and the hyphenation table the framework builds on a
session's first reply to time its transcript to the speech (a stall on the event loop then).

Only imports and pure-Python tables: nothing here starts a thread or an event loop, so forking
after it is safe.
"""

from livekit.agents.tokenize import basic
from livekit.plugins import silero  # noqa: F401

basic.hyphenate_word("voicefleet")
