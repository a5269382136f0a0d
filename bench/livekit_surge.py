"""A surge of new rooms: how long one LiveKit poll takes when N rooms appeared since the last.

Each sample: N callers join N new rooms on a real livekit-server (signal connection only,
voicefleet_devstack.callers), each room gets the agent's dispatch through the dispatch API,
and a collector that has not seen them polls once, in the state the surge leaves it: rooms
so new that ListRooms does not count their participants yet. The baseline asks LiveKit about
one room at a time and keeps no "no dispatch" answer, as the collector did before its lookups
ran side by side; both run in this process, alternating, on fresh rooms each time.

    .venv/bin/python bench/livekit_surge.py [--rooms 500] [--samples 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _stack import stop_on_sigterm, summary
from livekit import api

from voicefleet_devstack.callers import SignalCallers
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_operator.livekit_load import Collector, Endpoint
from voicefleet_operator.rooms import RoomLookups

AGENT = "surge"
MODES = {
    "sequential (before)": lambda: RoomLookups(concurrency=1, no_dispatch_seconds=0),
    "bounded concurrent (after)": RoomLookups,
}


async def empty(lk: api.LiveKitAPI) -> None:
    """Wait until the previous sample's rooms have closed (30 s at most)."""
    deadline = time.monotonic() + 30
    while (await lk.room.list_rooms(api.ListRoomsRequest())).rooms:
        if time.monotonic() > deadline:
            raise TimeoutError("rooms of the previous sample are still open")
        await asyncio.sleep(0.5)


async def dispatch(lk: api.LiveKitAPI, rooms: list[str]) -> None:
    limit = asyncio.Semaphore(32)

    async def one(room: str) -> None:
        async with limit:
            request = api.CreateAgentDispatchRequest(agent_name=AGENT, room=room)
            await lk.agent_dispatch.create_dispatch(request)

    await asyncio.gather(*(one(room) for room in rooms))


async def sample(server: LiveKitServer, lk: api.LiveKitAPI, mode: str, rooms: list[str]) -> float:
    """Seconds of one poll over `rooms`, all new to the collector."""
    await empty(lk)
    async with SignalCallers(server) as callers:
        await callers.join(rooms, agent_name=None)
        await dispatch(lk, rooms)
        endpoint = Endpoint(server.url, server.api_key, server.api_secret)
        collector = Collector(endpoint, 5.0, lambda _: None, rooms=MODES[mode]())
        started = time.perf_counter()
        await collector.poll(lk)
        elapsed = time.perf_counter() - started
        counted = collector.snapshot.sessions[AGENT]
        if collector.snapshot.error or counted != len(rooms):
            raise AssertionError(f"{mode}: counted {counted} of {len(rooms)} sessions, "
                                 f"error {collector.snapshot.error}")  # fmt: skip
    return elapsed


async def run(count: int, samples: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="vf-surge-") as tmp:
        server = LiveKitServer(Path(tmp) / "livekit").start()
        try:
            async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
                for n in range(samples):
                    order = list(MODES) if n % 2 == 0 else list(reversed(MODES))
                    for mode in order:
                        rooms = [f"s{n}-{mode[:3]}-{i:04d}" for i in range(count)]
                        seconds = await sample(server, lk, mode, rooms)
                        results[mode].append(seconds)
                        print(f"sample {n + 1}/{samples} {mode}: {seconds:.3f}s", flush=True)
        finally:
            server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    stop_on_sigterm()
    results = asyncio.run(run(args.rooms, args.samples))
    print()
    for mode, values in results.items():
        print(summary(f"poll with {args.rooms} new rooms, {mode}", values))
    before, after = (sorted(v)[len(v) // 2] for v in results.values())
    print(f"median ratio before/after: {before / after:.1f}×")


if __name__ == "__main__":
    main()
