"""A call picked up again after its agent was lost.

When a job process or a whole worker dies mid-call, the agent is dispatched into the room
again (by the worker or by the operator) with job metadata naming why; the new agent then
greets the caller back instead of waiting in silence for them to speak first.
"""

from __future__ import annotations

import json

# The key a re-dispatch writes into the job's metadata.
RESUMED = "voicefleet.resumed"
RESUME_LINE = "Sorry, I lost you for a moment. I am back now. What were you saying?"


def resume_metadata(reason: str) -> str:
    """Job metadata for an agent sent back into a call it lost (`reason`: how it was lost)."""
    return json.dumps({RESUMED: {"lostBy": reason}})


def resumed(job_metadata: str) -> bool:
    """Whether this job continues a call whose agent was lost."""
    try:
        metadata = json.loads(job_metadata) if job_metadata else {}
    except ValueError:
        return False
    return isinstance(metadata, dict) and RESUMED in metadata
