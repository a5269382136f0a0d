"""What the agent and the operator say to each other through LiveKit: the metadata of a job
sent back into a call it lost, and the participant attribute naming an agent's pod."""

from __future__ import annotations

import json

# The key a re-dispatch writes into the job's metadata (the worker's recovery.py, the
# operator's redispatch.py); a job that finds it greets the caller back (resume.py).
RESUMED = "voicefleet.resumed"
# The participant attribute naming the pod an agent runs in (the worker's placement.py); the
# operator finds a dead worker's rooms by it (worker_loss.py).
POD_ATTRIBUTE = "voicefleet.io/pod"


def resume_metadata(reason: str) -> str:
    """Job metadata for an agent sent back into a call it lost (`reason`: how it was lost)."""
    return json.dumps({RESUMED: {"lostBy": reason}})
