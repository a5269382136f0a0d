"""Which pod a call's agent runs in, written on its participant for the operator to read.

When a whole worker dies, livekit-server keeps its agents in their rooms until their
connections time out (about 20 s). Kubernetes knows within a second that the worker's
container died; the operator then finds the rooms of that pod's agents by this attribute,
removes the dead agents and dispatches the rooms' agents again. LiveKit merges the attributes
a participant sets with those it already has (the framework's `lk.agent.*` ones stay).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from livekit import rtc

from voicefleet_models.room import POD_ATTRIBUTE

logger = logging.getLogger("voicefleet.placement")

# Set by the operator's pod template from the downward API; absent on a local worker.
POD_VARIABLE = "POD_NAME"


def pod_attributes(env: Mapping[str, str]) -> dict[str, str]:
    """The attribute naming this worker's pod, or none outside a pod."""
    pod = env.get(POD_VARIABLE, "")
    return {POD_ATTRIBUTE: pod} if pod else {}


async def mark_pod(room: rtc.Room, env: Mapping[str, str]) -> None:
    """Name the pod on the job's agent participant. A failure only costs speed: a lost worker's
    calls then come back through LiveKit's own timeout instead."""
    attributes = pod_attributes(env)
    if not attributes:
        return
    try:
        await room.local_participant.set_attributes(attributes)
    except Exception:  # never end a call over a missing label
        logger.warning("could not name the pod on the agent participant", exc_info=True)
