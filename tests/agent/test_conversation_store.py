"""The conversation a job saves for the next agent of its call, in-process: what is kept, how
it is sealed and trimmed, and how it sits among other keys of the room metadata."""

from __future__ import annotations

import json

import pytest
from livekit import api, rtc
from livekit.agents import llm

from tests.agent.conftest import eventually
from voicefleet_agent.conversation_store import (
    BUDGET_BYTES,
    FORMAT,
    METADATA_KEY,
    SPEAKER,
    Conversation,
    ConversationStore,
    Message,
    Scrubber,
    Seal,
    ToolCall,
    ToolResult,
    UnreadableError,
    chat_items,
    saved_items,
    sealed_in,
    with_conversation,
    within_budget,
)
from voicefleet_agent.logs import REDACTED
from voicefleet_agent.metrics import CONVERSATION_CARRYOVER, Labels
from voicefleet_devstack.livekit import LiveKitServer

SECRET = "lk-api-secret-of-the-workers-0123456789"
NO_SECRETS = Scrubber({})
LABELS = Labels("carryover-test", "eu")


def conversation_of(*texts: str) -> Conversation:
    return Conversation(
        items=[
            Message(role="user" if i % 2 == 0 else "assistant", text=text, at=float(i))
            for i, text in enumerate(texts)
        ]
    )


def history_with_a_tool_call() -> list[llm.ChatItem]:
    return [
        llm.ChatMessage(role="system", content=["You are a test agent."], created_at=1.0),
        llm.ChatMessage(role="user", content=["where is my order 1234"], created_at=2.0),
        llm.FunctionCall(
            call_id="c1", name="order_status", arguments='{"order": "1234"}', created_at=3.0
        ),
        llm.FunctionCallOutput(
            call_id="c1", name="order_status", output="shipped", is_error=False, created_at=4.0
        ),
        llm.ChatMessage(role="assistant", content=["It has shipped."], created_at=5.0),
    ]


def test_a_sealed_conversation_opens_with_the_same_key_in_the_same_room() -> None:
    conversation = conversation_of("my name is Ada", "Hello Ada.")
    sealed = Seal(SECRET, "room-1").seal(conversation)
    assert sealed.startswith(f"{FORMAT}.")
    # Participants see the room metadata: nothing said may be readable in it.
    assert "Ada" not in sealed
    assert Seal(SECRET, "room-1").unseal(sealed) == conversation
    # Each save draws a new nonce: the same conversation never seals to the same value.
    assert Seal(SECRET, "room-1").seal(conversation) != sealed


def test_a_tampered_foreign_or_unknown_value_is_refused() -> None:
    sealed = Seal(SECRET, "room-1").seal(conversation_of("my name is Ada"))
    version, _, body = sealed.partition(".")
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    cases = {
        "tampered": f"{version}.{flipped}",
        "truncated": sealed[:-8],
        "not base64": f"{version}.not*base64*at*all",
        "unknown format": f"0.{body}",
        "no format": body,
    }
    for what, value in cases.items():
        try:
            Seal(SECRET, "room-1").unseal(value)
        except UnreadableError:
            continue
        pytest.fail(f"a {what} value was opened")
    with pytest.raises(UnreadableError):
        Seal("another-livekit-api-secret", "room-1").unseal(sealed)
    # Copied into another room's metadata, it does not open there either.
    with pytest.raises(UnreadableError):
        Seal(SECRET, "room-2").unseal(sealed)


def test_the_unreadable_reason_carries_no_content() -> None:
    sealed = Seal(SECRET, "room-1").seal(conversation_of("my card is 4242"))
    with pytest.raises(UnreadableError) as refused:
        Seal("another-livekit-api-secret", "room-1").unseal(sealed)
    assert "4242" not in str(refused.value)


def test_budget_keeps_the_newest_turns() -> None:
    texts = [f"turn {i:03d} " + "words " * 40 for i in range(400)]
    conversation = within_budget(conversation_of(*texts).items)
    sealed = Seal(SECRET, "room-1").seal(conversation)
    assert len(sealed) <= BUDGET_BYTES
    # Nearly full: no more than one turn's worth of room is left unused.
    assert len(sealed) > BUDGET_BYTES - 400
    kept = [item.text for item in conversation.items if isinstance(item, Message)]
    assert kept == texts[-len(kept) :]
    assert 0 < len(kept) < len(texts)
    small = conversation_of("hello", "hi")
    assert within_budget(small.items) == small


def test_budget_never_keeps_a_tool_result_without_its_call() -> None:
    items = saved_items(history_with_a_tool_call(), {}, tool_content=True, scrub=NO_SECRETS)
    sizes = [Seal(SECRET, "r").seal(Conversation(items=items[i:])) for i in range(len(items))]
    # A budget that fits the result and the reply but not the call before them.
    budget = len(sizes[2]) - 1
    trimmed = within_budget(items, budget)
    assert [type(i) for i in trimmed.items] == [Message]
    assert trimmed.items[0] == items[-1]


def test_tool_content_is_kept_only_where_traces_may_hold_it() -> None:
    history = history_with_a_tool_call()
    without = saved_items(history, {}, tool_content=False, scrub=NO_SECRETS)
    assert without == [
        Message(role="user", text="where is my order 1234", at=2.0),
        Message(role="assistant", text="It has shipped.", at=5.0),
    ]
    # The instructions come from the config: never saved.
    with_tools = saved_items(history, {}, tool_content=True, scrub=NO_SECRETS)
    assert [type(i) for i in with_tools] == [Message, ToolCall, ToolResult, Message]
    assert isinstance(with_tools[1], ToolCall)
    assert with_tools[1].arguments == '{"order": "1234"}'
    assert isinstance(with_tools[2], ToolResult)
    assert with_tools[2].output == "shipped"


def test_secret_values_are_scrubbed_before_sealing() -> None:
    env = {"DEEPGRAM_API_KEY": "dg-secret-value-123", "CRM_TOKEN": "crm-token-value-456"}
    scrub = Scrubber(env, ["CRM_TOKEN"])
    history: list[llm.ChatItem] = [
        llm.ChatMessage(role="user", content=["my key is dg-secret-value-123"], created_at=1.0),
        llm.FunctionCall(
            call_id="c1", name="crm", arguments='{"auth": "crm-token-value-456"}', created_at=2.0
        ),
        llm.FunctionCallOutput(
            call_id="c1", name="crm", output="echo crm-token-value-456", is_error=False
        ),
    ]
    saved = saved_items(history, {}, tool_content=True, scrub=scrub)
    dumped = Conversation(items=saved).model_dump_json()
    assert "dg-secret-value-123" not in dumped
    assert "crm-token-value-456" not in dumped
    assert dumped.count(REDACTED) == 3


def test_speakers_are_kept_and_restored() -> None:
    first = llm.ChatMessage(role="user", content=["I am the first caller"], created_at=1.0)
    second = llm.ChatMessage(role="user", content=["and I am the second"], created_at=2.0)
    saved = saved_items(
        [first, second], {first.id: "caller-a", second.id: "caller-b"},
        tool_content=False, scrub=NO_SECRETS,
    )  # fmt: skip
    restored = chat_items(Conversation(items=saved))
    assert [m.extra.get(SPEAKER) for m in restored if isinstance(m, llm.ChatMessage)] == [
        "caller-a",
        "caller-b",
    ]
    # Saved again by the next agent (after another loss), restored messages keep theirs.
    again = saved_items(restored, {}, tool_content=False, scrub=NO_SECRETS)
    assert again == saved


def test_restored_items_are_what_the_model_is_given() -> None:
    saved = saved_items(history_with_a_tool_call(), {}, tool_content=True, scrub=NO_SECRETS)
    restored = llm.ChatContext(chat_items(Conversation(items=saved)))
    assert [(m.role, m.text_content) for m in restored.messages()] == [
        ("user", "where is my order 1234"),
        ("assistant", "It has shipped."),
    ]
    calls = [i for i in restored.items if isinstance(i, llm.FunctionCall)]
    outputs = [i for i in restored.items if isinstance(i, llm.FunctionCallOutput)]
    assert [(c.call_id, c.name) for c in calls] == [("c1", "order_status")]
    assert [(o.call_id, o.output) for o in outputs] == [("c1", "shipped")]


def test_the_room_metadata_keeps_its_other_keys() -> None:
    sealed = Seal(SECRET, "room-1").seal(conversation_of("hello"))
    merged = with_conversation(json.dumps({"theme": "dark", METADATA_KEY: "old"}), sealed)
    assert merged is not None
    assert json.loads(merged) == {"theme": "dark", METADATA_KEY: sealed}
    assert sealed_in(merged) == sealed
    assert with_conversation("", sealed) == json.dumps(
        {METADATA_KEY: sealed}, separators=(",", ":")
    )
    # Metadata in someone else's format is never overwritten, nor read as a conversation.
    assert with_conversation("plain text someone set", sealed) is None
    assert with_conversation("[1, 2]", sealed) is None
    assert sealed_in("plain text someone set") is None
    assert sealed_in(json.dumps({"theme": "dark"})) is None
    assert sealed_in("") is None


async def joined(livekit: LiveKitServer, room: str, identity: str) -> rtc.Room:
    """A participant in `room`, as a job's agent is: it sees the room metadata live."""
    token = (
        api.AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    connected = rtc.Room()
    await connected.connect(livekit.url, token)
    return connected


def carried(operation: str, outcome: str) -> float:
    child = CONVERSATION_CARRYOVER.labels(**LABELS.common(), operation=operation, outcome=outcome)
    return float(child._value.get())


async def test_a_conversation_saved_in_a_room_is_restored_by_the_next_agent_only(
    livekit: LiveKitServer,
) -> None:
    env = {"LIVEKIT_API_SECRET": livekit.api_secret}
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        await lk.room.create_room(
            api.CreateRoomRequest(name="carry", metadata=json.dumps({"theme": "dark"}))
        )
        # What a lost agent saved after its last turn.
        lost = conversation_of("my name is Ada", "Hello Ada.")
        sealed = Seal(livekit.api_secret, "carry").seal(lost)
        await lk.room.update_room_metadata(
            api.UpdateRoomMetadataRequest(
                room="carry", metadata=with_conversation('{"theme": "dark"}', sealed)
            )
        )
        room = await joined(livekit, "carry", "agent-next")
        try:
            store = ConversationStore(lk, room, "carry", env, LABELS, tool_content=False)
            restored = await store.restore()
            assert [(m.role, m.text_content) for m in llm.ChatContext(restored).messages()] == [
                ("user", "my name is Ada"),
                ("assistant", "Hello Ada."),
            ]
            assert carried("restore", "restored") == 1
            # Saved again (the restored turns are part of this call now), among other keys.
            await eventually(lambda: sealed_in(room.metadata) == sealed, what="metadata seen")
            assert await store.save() == "saved"
            listing = await lk.room.list_rooms(api.ListRoomsRequest(names=["carry"]))
            metadata = json.loads(listing.rooms[0].metadata)
            assert metadata["theme"] == "dark"
            assert metadata[METADATA_KEY] != sealed
            assert Seal(livekit.api_secret, "carry").unseal(metadata[METADATA_KEY]) == lost
        finally:
            await room.disconnect()
        # Another key, or a room without a saved conversation: the call starts over.
        other = ConversationStore(
            lk, rtc.Room(), "carry", {"LIVEKIT_API_SECRET": "another-secret"}, LABELS,
            tool_content=False,
        )  # fmt: skip
        assert await other.restore() == []
        assert carried("restore", "unreadable") == 1
        await lk.room.create_room(api.CreateRoomRequest(name="fresh"))
        fresh = ConversationStore(lk, rtc.Room(), "fresh", env, LABELS, tool_content=False)
        assert await fresh.restore() == []
        assert carried("restore", "missing") == 1
