"""Small helpers shared by the tests."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Return the first truthy result of `check`, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last result: {last!r}")


BASE_AGENT: dict[str, Any] = {
    "apiVersion": "voicefleet.io/v1alpha1",
    "kind": "VoiceAgent",
    "metadata": {"name": "support"},
    "spec": {
        "image": "voicefleet-agent:test",
        "pipeline": {
            "stt": [{"provider": "simulated"}],
            "llm": [{"provider": "simulated"}],
            "tts": [{"provider": "simulated"}],
        },
        "regions": [
            {
                "name": "us-east",
                "livekit": {"url": "ws://127.0.0.1:7880", "credentialsSecret": "livekit-us"},
                "minReplicas": 1,
                "maxReplicas": 5,
            }
        ],
    },
}


def voice_agent(name: str = "support", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A valid VoiceAgent manifest with `spec` fields replaced."""
    agent = copy.deepcopy(BASE_AGENT)
    agent["metadata"] = {"name": name, "namespace": namespace}
    agent["spec"].update(spec)
    return agent
