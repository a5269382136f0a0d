"""A call picked up again after its agent was lost.

When a worker dies mid-call, the operator dispatches the agent into the room again with job
metadata naming why; the new agent then greets the caller back instead of waiting in silence
for them to speak first.
"""

from __future__ import annotations

import json

# The key the operator's re-dispatch writes into the job's metadata.
RESUMED = "voicefleet.resumed"
RESUME_LINE = "Sorry, I lost you for a moment. I am back now. What were you saying?"


def resumed(job_metadata: str) -> bool:
    """Whether this job continues a call whose agent was lost."""
    try:
        metadata = json.loads(job_metadata) if job_metadata else {}
    except ValueError:
        return False
    return isinstance(metadata, dict) and RESUMED in metadata
