"""Worker resources sized from the measured cost of a session.

bench/agent_cost.py measures what a session costs the worker itself (VAD, WebRTC audio, the
framework; the remote providers' own compute excluded): 11–27 % of a core per session, 27 %
for a lone session and less as sessions share the worker's baseline, and about 50 MiB per
added session on top of about 310 MiB for an idle worker with its warm job processes
(docs/production.md, "Size and watch"). The defaults below cover both ends of that range:
200 m + 100 m per session is 300 m for one session (27 % measured) and 1.8 cores for sixteen
(16 × 11 % = 1.76); 320 Mi + 64 Mi per session leaves each session 14 Mi above the measured
50 MiB for the provider clients' buffers. Requests that low-ball the cost would let the
scheduler pack workers onto a node that cannot carry their calls, so they are not left
empty (best-effort QoS is the first to be evicted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from voicefleet_models.quantity import quantity

CPU_BASE_MILLICORES = 200
CPU_PER_SESSION_MILLICORES = 100
MEMORY_BASE_MIB = 320
MEMORY_PER_SESSION_MIB = 64
# A worker that runs out of memory is killed with every call it carries; twice the request
# absorbs a spike (long contexts, tool results) without letting one worker take the node.
MEMORY_LIMIT_FACTOR = 2
MIB = 2**20
ResourceList = Mapping[str, str]


def sized_requests(sessions: int) -> dict[str, str]:
    """cpu and memory requests of a worker that serves `sessions` calls at once."""
    cpu = CPU_BASE_MILLICORES + CPU_PER_SESSION_MILLICORES * sessions
    memory = MEMORY_BASE_MIB + MEMORY_PER_SESSION_MIB * sessions
    return {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}


def worker_resources(
    requests: ResourceList, limits: ResourceList, sessions: int
) -> dict[str, dict[str, str]]:
    """The container's resources: what the user set, and for cpu or memory requests left out,
    the sized ones (never above the user's limit); a memory limit left out is twice the
    memory request."""
    wanted = dict(requests)
    for name, sized in sized_requests(sessions).items():
        if name not in wanted:
            cap = limits.get(name)
            wanted[name] = cap if cap is not None and quantity(cap) < quantity(sized) else sized
    ceilings = dict(limits)
    if "memory" not in ceilings:
        doubled = quantity(wanted["memory"]) * MEMORY_LIMIT_FACTOR
        ceilings["memory"] = f"{math.ceil(doubled / MIB)}Mi"
    return {"requests": wanted, "limits": ceilings}
