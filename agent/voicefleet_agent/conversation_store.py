"""A call's conversation, kept where the next agent of the call can read it.

When a job process or a whole worker dies mid-call, another job (maybe in another pod) is sent
into the room (`voicefleet_agent.recovery`, the operator's redispatch). So that it continues
the conversation instead of starting over, each job saves the conversation after every agent
turn, and a resumed job reads it back before its session starts.

Where: the room's own metadata, written with the server API (UpdateRoomMetadata). It outlives
any process, every worker of the agent can reach it with the credentials it already holds, it
needs no store of its own, and it goes away with the room. Participant attributes die with
the dead agent's participant; the operator keeps no per-call state; a database would be one
more thing to run and secure for seconds of data.

Room metadata is visible to every participant (a room can hold several callers, and people
invited later), so the conversation is sealed: AES-GCM under a key derived (HKDF-SHA256) from
the LiveKit API secret, which only the workers and the operator hold, with the room's name as
associated data so a value copied into another room does not open there. Participants see
an opaque string under one key (METADATA_KEY) and the length of the conversation; other keys
of the metadata are kept as they are. The plaintext is not compressed: in a room with several
callers, compressed sizes would let one caller probe what another said.

What: user and assistant messages (text, the caller who spoke, whether the agent was
interrupted); tool calls and their results only where `observability.traceToolContent`
allows them on traces. Values of secret variables (those the logs scrub, and the tools'
header variables) are replaced before sealing. Never the instructions: they come from the
config. The sealed value stays within BUDGET_BYTES: the newest turns are kept, the oldest
dropped. livekit-server refuses larger metadata when `limit.max_metadata_size` is set (LiveKit
Cloud: 64 KiB; unset in livekit-server 1.13 by default), and every change is sent to every
participant.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

import aiohttp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from livekit import api, rtc
from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import ConversationItemAddedEvent
from pydantic import BaseModel, Field, ValidationError

from voicefleet_agent.logs import REDACTED, SECRET_VARIABLES
from voicefleet_agent.metrics import CONVERSATION_CARRYOVER, Labels

logger = logging.getLogger("voicefleet.agent")

METADATA_KEY = "voicefleet.conversation"
# Sealed values start with their format; a value of another format is not read.
FORMAT = "1"
# Room metadata is sent to every participant on every change, and may be capped at 64 KiB.
BUDGET_BYTES = 32_000
SECRET_VARIABLE = "LIVEKIT_API_SECRET"
# Where a restored user message keeps the identity of the caller who said it.
SPEAKER = "voicefleet.speaker"
# A resumed call waits for this read before the agent greets the caller back.
RESTORE_TIMEOUT_SECONDS = 3.0
SAVE_TIMEOUT_SECONDS = 5.0
# Shorter values are not scrubbed: they would blank ordinary words (as in the logs).
MIN_SECRET_LENGTH = 8
OUTCOMES = {
    "save": ("saved", "failed", "skipped"),
    "restore": ("restored", "missing", "unreadable", "failed"),
}
# What a server API call may fail with: refused, unreachable, too slow, or its HTTP session
# closed as the job ends.
API_ERRORS = (api.TwirpError, aiohttp.ClientError, OSError, TimeoutError, RuntimeError)
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_INFO = b"voicefleet conversation " + FORMAT.encode()


class Message(BaseModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant"]
    text: str
    speaker: str | None = None
    interrupted: bool = False
    at: float


class ToolCall(BaseModel):
    type: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: str
    at: float


class ToolResult(BaseModel):
    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    output: str
    is_error: bool
    at: float


SavedItem = Annotated[Message | ToolCall | ToolResult, Field(discriminator="type")]


class Conversation(BaseModel):
    items: list[SavedItem] = Field(default_factory=list)


class UnreadableError(Exception):
    """A saved conversation that cannot be opened; the message says why, never what it holds."""


class Seal:
    """Seals conversations of one room under a key derived from the LiveKit API secret."""

    def __init__(self, secret: str, room: str) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
        self._aead = AESGCM(hkdf.derive(secret.encode()))
        self._room = room.encode()

    def seal(self, conversation: Conversation) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = conversation.model_dump_json().encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, self._room)
        return f"{FORMAT}.{base64.urlsafe_b64encode(sealed).decode()}"

    def unseal(self, value: str) -> Conversation:
        version, _, body = value.partition(".")
        if version != FORMAT:
            raise UnreadableError(f"format {version[:8]!r}, not {FORMAT}")
        try:
            sealed = base64.urlsafe_b64decode(body.encode())
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], self._room)
        except (binascii.Error, ValueError, InvalidTag):
            raise UnreadableError("not sealed by this agent's key for this room") from None
        try:
            return Conversation.model_validate_json(plain)
        except ValidationError:
            raise UnreadableError("sealed but not a conversation") from None


def sealed_size(plain_bytes: int) -> int:
    """Length of the sealed value of a plaintext of `plain_bytes`."""
    return len(FORMAT) + 1 + 4 * -(-(_NONCE_BYTES + plain_bytes + _TAG_BYTES) // 3)


def newest_within_budget(
    newest_first: Iterable[SavedItem], budget: int = BUDGET_BYTES
) -> Conversation:
    """The newest items whose sealed conversation fits `budget`, in order; `newest_first` is
    read only as far as they fit. A tool result whose call was dropped goes too: a model
    refuses a result without its call."""
    size = len(Conversation().model_dump_json().encode())
    kept: list[SavedItem] = []
    for item in newest_first:
        item_size = len(item.model_dump_json().encode()) + (1 if kept else 0)
        if sealed_size(size + item_size) > budget:
            break
        size += item_size
        kept.append(item)
    kept.reverse()
    while kept and isinstance(kept[0], ToolResult):
        kept.pop(0)
    return Conversation(items=kept)


def within_budget(items: Sequence[SavedItem], budget: int = BUDGET_BYTES) -> Conversation:
    """The newest of `items` (oldest first) whose sealed conversation fits `budget`."""
    return newest_within_budget(reversed(items), budget)


class Scrubber:
    """Replaces the values of secret variables, as the logs do."""

    def __init__(self, env: Mapping[str, str], extra_secrets: Iterable[str] = ()) -> None:
        names = [*SECRET_VARIABLES, *extra_secrets]
        self._secrets = [v for n in names if len(v := env.get(n, "")) >= MIN_SECRET_LENGTH]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def saved_item(
    item: llm.ChatItem, speakers: Mapping[str, str], *, tool_content: bool, scrub: Scrubber
) -> SavedItem | None:
    """What is kept of one chat item: a user's or the agent's message, and a tool call or
    result when `tool_content` allows; None for anything else. `speakers` maps message ids
    to the caller who said them."""
    if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
        text = item.text_content
        if not text:
            return None
        speaker = speakers.get(item.id) or item.extra.get(SPEAKER)
        return Message(
            role="user" if item.role == "user" else "assistant",
            text=scrub(text),
            speaker=speaker if isinstance(speaker, str) else None,
            interrupted=item.interrupted,
            at=item.created_at,
        )
    if tool_content and isinstance(item, llm.FunctionCall):
        return ToolCall(
            call_id=item.call_id,
            name=item.name,
            arguments=scrub(item.arguments),
            at=item.created_at,
        )
    if tool_content and isinstance(item, llm.FunctionCallOutput):
        return ToolResult(
            call_id=item.call_id,
            name=item.name,
            output=scrub(item.output),
            is_error=item.is_error,
            at=item.created_at,
        )
    return None


def saved_items(
    items: Iterable[llm.ChatItem],
    speakers: Mapping[str, str],
    *,
    tool_content: bool,
    scrub: Scrubber,
) -> list[SavedItem]:
    """What is kept of a chat history (see `saved_item`), in order."""
    kept = (saved_item(i, speakers, tool_content=tool_content, scrub=scrub) for i in items)
    return [item for item in kept if item is not None]


def chat_items(conversation: Conversation) -> list[llm.ChatItem]:
    """The saved conversation as chat items for an agent's context."""
    items: list[llm.ChatItem] = []
    for saved in conversation.items:
        if isinstance(saved, Message):
            extra = {SPEAKER: saved.speaker} if saved.speaker else {}
            items.append(
                llm.ChatMessage(
                    role=saved.role,
                    content=[saved.text],
                    interrupted=saved.interrupted,
                    created_at=saved.at,
                    extra=extra,
                )
            )
        elif isinstance(saved, ToolCall):
            items.append(
                llm.FunctionCall(
                    call_id=saved.call_id,
                    name=saved.name,
                    arguments=saved.arguments,
                    created_at=saved.at,
                )
            )
        else:
            items.append(
                llm.FunctionCallOutput(
                    call_id=saved.call_id,
                    name=saved.name,
                    output=saved.output,
                    is_error=saved.is_error,
                    created_at=saved.at,
                )
            )
    return items


def _metadata_object(metadata: str) -> dict[str, Any] | None:
    """The room metadata as a JSON object ({} when empty); None when it is something else."""
    if not metadata.strip():
        return {}
    try:
        parsed = json.loads(metadata)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def sealed_in(metadata: str) -> str | None:
    """The sealed conversation the room metadata holds, if any."""
    value = (_metadata_object(metadata) or {}).get(METADATA_KEY)
    return value if isinstance(value, str) else None


def with_conversation(metadata: str, sealed: str) -> str | None:
    """The room metadata with `sealed` under METADATA_KEY, every other key kept; None when the
    metadata is not a JSON object (someone else's format, not to be overwritten)."""
    parsed = _metadata_object(metadata)
    if parsed is None:
        return None
    return json.dumps({**parsed, METADATA_KEY: sealed}, separators=(",", ":"))


class ConversationStore:
    """Saves one call's conversation into its room after every agent turn, and reads back
    the conversation a lost agent of the call saved.

    Saving never holds up the call: one save runs at a time in the background, and turns that
    end meanwhile are saved together by the next one. A failed save is logged and counted."""

    def __init__(
        self,
        lk: api.LiveKitAPI,
        room: rtc.Room,
        room_name: str,
        env: Mapping[str, str],
        labels: Labels,
        *,
        tool_content: bool,
        extra_secrets: Sequence[str] = (),
    ) -> None:
        self._lk = lk
        self._room = room  # its metadata is read once connected, when saving
        self._room_name = room_name
        self._seal = Seal(env[SECRET_VARIABLE], room_name)
        self._scrub = Scrubber(env, extra_secrets)
        self._labels = labels
        self._tool_content = tool_content
        self._restored: list[llm.ChatItem] = []
        self._speakers: dict[str, str] = {}
        self._session: AgentSession[Any] | None = None
        self._pending = False
        self._saving: asyncio.Task[None] | None = None
        # Every series exists at 0 from the first call on, as the session counters do.
        for operation, outcomes in OUTCOMES.items():
            for outcome in outcomes:
                CONVERSATION_CARRYOVER.labels(
                    **labels.common(), operation=operation, outcome=outcome
                ).inc(0)

    def _count(self, operation: str, outcome: str) -> None:
        CONVERSATION_CARRYOVER.labels(
            **self._labels.common(), operation=operation, outcome=outcome
        ).inc()

    async def restore(self) -> list[llm.ChatItem]:
        """The conversation saved in the room, as chat items; [] when there is none that this
        agent can read (logged once, without content)."""
        try:
            listing = await asyncio.wait_for(
                self._lk.room.list_rooms(api.ListRoomsRequest(names=[self._room_name])),
                RESTORE_TIMEOUT_SECONDS,
            )
        except API_ERRORS as error:  # the call goes on, as a new conversation
            logger.warning(
                "could not read the saved conversation", extra={"error": type(error).__name__}
            )
            self._count("restore", "failed")
            return []
        metadata = listing.rooms[0].metadata if listing.rooms else ""
        value = sealed_in(metadata)
        if value is None:
            logger.warning("no saved conversation in the room: the call starts over")
            self._count("restore", "missing")
            return []
        try:
            conversation = self._seal.unseal(value)
        except UnreadableError as error:
            logger.warning(
                "the saved conversation cannot be read: the call starts over",
                extra={"reason": str(error)},
            )
            self._count("restore", "unreadable")
            return []
        self._restored = chat_items(conversation)
        logger.info("conversation restored", extra={"items": len(self._restored)})
        self._count("restore", "restored")
        return list(self._restored)

    def watch(self, session: AgentSession[Any]) -> None:
        """Save after each of the agent's turns in `session`."""
        self._session = session
        session.on("conversation_item_added", self._on_item)

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or self._session is None:
            return
        if item.role == "user":
            try:
                linked = self._session.room_io.linked_participant
            except RuntimeError:  # no room I/O (yet)
                linked = None
            if linked is not None:
                self._speakers[item.id] = linked.identity
        elif item.role == "assistant":
            self._pending = True
            if self._saving is None or self._saving.done():
                self._saving = asyncio.get_running_loop().create_task(self._save_pending())

    async def _save_pending(self) -> None:
        while self._pending:
            self._pending = False
            self._count("save", await self.save())

    def snapshot(self) -> Conversation:
        """What would be saved now: the restored conversation and this session's, trimmed."""
        history = self._session.history.items if self._session is not None else []
        # Newest first, converted only as far as the budget goes: a long call's save stays
        # as quick as a short one's.
        newest_first = (
            saved
            for item in reversed([*self._restored, *history])
            if (
                saved := saved_item(
                    item, self._speakers, tool_content=self._tool_content, scrub=self._scrub
                )
            )
            is not None
        )
        return newest_within_budget(newest_first)

    async def save(self) -> str:
        """Seal the conversation into the room metadata; returns the outcome."""
        metadata = with_conversation(self._room.metadata, self._seal.seal(self.snapshot()))
        if metadata is None:
            logger.warning("room metadata is not a JSON object: the conversation is not saved")
            return "skipped"
        try:
            await asyncio.wait_for(
                self._lk.room.update_room_metadata(
                    api.UpdateRoomMetadataRequest(room=self._room_name, metadata=metadata)
                ),
                SAVE_TIMEOUT_SECONDS,
            )
        except API_ERRORS as error:  # the call goes on; the next turn tries again
            logger.warning("could not save the conversation", extra={"error": type(error).__name__})
            return "failed"
        return "saved"
