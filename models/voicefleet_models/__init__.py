"""The VoiceAgent resource and the worker's configuration, defined once: the models the
operator, the agent worker and the generators all build on.

Import-light on purpose: this package imports only pydantic and the standard library, never
the operator, the agent or their stacks (kopf, livekit, aiohttp), so any of them, and tools
that only read or write a VoiceAgent, can depend on it alone.
"""
