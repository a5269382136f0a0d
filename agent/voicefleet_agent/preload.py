"""Imported once in the worker's forkserver (`main.PRELOAD_MODULES`), so every job process
inherits this one-time work copy-on-write instead of paying for it again: Silero's plugin and
onnxruntime, which `prewarm` would import, and the hyphenation table the framework builds on a
session's first reply to time its transcript to the speech (a stall on the event loop then).

The forkserver starts before the framework's worker does (`main.start_forkserver`), so the
CA bundle fallback the framework puts in the environment for job processes (SSL_CERT_FILE,
when the system has no trust store) is set here, in the environment they inherit.

Only imports, pure-Python tables and environment: nothing here starts a thread or an event
loop, so forking after it is safe.
"""

from livekit.agents.tokenize import basic
from livekit.agents.utils import http_context
from livekit.plugins import silero  # noqa: F401

basic.hyphenate_word("voicefleet")
http_context._set_default_cert_env()
