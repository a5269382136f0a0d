"""A call picked up again after its agent was lost.

When a job process or a whole worker dies mid-call, the agent is dispatched into the room
again (by the worker or by the operator) with job metadata naming why; the new agent then
greets the caller back instead of waiting in silence for them to speak first, and continues
the conversation its lost predecessor saved in the room (voicefleet_agent.conversation_store).
"""

from __future__ import annotations

import json

from livekit.agents import Agent, llm

from voicefleet_agent.conversation_store import ConversationStore
from voicefleet_models.room import RESUMED

RESUME_LINE = "Sorry, I lost you for a moment. I am back now. What were you saying?"


def resumed(job_metadata: str) -> bool:
    """Whether this job continues a call whose agent was lost."""
    try:
        metadata = json.loads(job_metadata) if job_metadata else {}
    except ValueError:
        return False
    return isinstance(metadata, dict) and RESUMED in metadata


async def restore_conversation(agent: Agent, store: ConversationStore) -> int:
    """Put the conversation saved in the room into `agent`'s context, before its session
    starts; returns the items restored (0: the call starts over, as a new conversation)."""
    restored = await store.restore()
    if restored:
        items = sorted([*agent.chat_ctx.items, *restored], key=lambda item: item.created_at)
        await agent.update_chat_ctx(llm.ChatContext(items))
    return len(restored)
