"""Many callers at little cost, for surge tests and benchmarks.

Each caller opens only LiveKit's signal connection with a token as the token function issues
it (room grant + agent dispatch) and never sends media. To LiveKit that is a participant like
any other: its join creates the room and the agent dispatch, ListRooms and ListParticipants
count it, and it stays until the connection closes. A WebRTC caller would cost a peer
connection and an audio track each; hundreds of these cost a socket each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

import aiohttp
from livekit import api

from voicefleet_devstack.livekit import LiveKitServer

SIGNAL_PROTOCOL = 15
JOIN_CONCURRENCY = 64


class SignalCallers:
    """Callers joined through the signal connection only; all leave when the block ends."""

    def __init__(self, server: LiveKitServer) -> None:
        self.server = server
        # Each caller holds its connection for as long as it stays: no pool limit.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []
        self._joins = asyncio.Semaphore(JOIN_CONCURRENCY)

    async def __aenter__(self) -> SignalCallers:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.leave()
        await self._http.close()

    async def join(self, rooms: Iterable[str], agent_name: str | None) -> None:
        """One caller in each room, its token dispatching `agent_name` (None: no agent)."""
        await asyncio.gather(*(self._join(room, agent_name) for room in rooms))

    async def leave(self) -> None:
        sockets, self._sockets = self._sockets, []
        await asyncio.gather(*(socket.close() for socket in sockets))

    async def _join(self, room: str, agent_name: str | None) -> None:
        token = (
            api.AccessToken(self.server.api_key, self.server.api_secret)
            .with_identity(f"caller-{room}")
            .with_grants(api.VideoGrants(room_join=True, room=room))
        )
        if agent_name is not None:
            agents = [api.RoomAgentDispatch(agent_name=agent_name)]
            token = token.with_room_config(api.RoomConfiguration(agents=agents))
        url = f"{self.server.url}/rtc?access_token={token.to_jwt()}&protocol={SIGNAL_PROTOCOL}"
        async with self._joins:
            socket = await self._http.ws_connect(url)
            self._sockets.append(socket)
            # The server's first message is its answer to the join: the caller is in.
            message = await socket.receive(timeout=10)
        if message.type != aiohttp.WSMsgType.BINARY:
            raise RuntimeError(f"livekit-server refused a caller in room {room}: {message}")
