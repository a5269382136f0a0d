"""The scripted language model's decisions: a rule table in, a tool call or a reply out.

Deterministic and offline, for tests and keyless demos: the caller's last turn selects the
first rule with a matching word; a rule with a tool calls it with its fixed arguments, and once
the tool's result is in the chat history the rule's reply is given with that result in it.
"""

from __future__ import annotations

import json
import re

from livekit.agents import llm, utils

from voicefleet_models.agent_config import ScriptRule, ScriptSpec

RESULT_PLACEHOLDER = "{result}"


def words_of(text: str) -> str:
    """Lower-case words joined by single spaces, padded so phrases match whole words."""
    words = re.findall(r"[\w']+", text.lower())
    return " " + " ".join(words) + " "


def matching_rule(script: ScriptSpec, user_text: str) -> ScriptRule | None:
    said = words_of(user_text)
    for rule in script.rules:
        if any(words_of(w).strip() and words_of(w) in said for w in rule.words):
            return rule
    return None


def _last_turn(chat_ctx: llm.ChatContext) -> tuple[str, list[llm.FunctionCallOutput]]:
    """The caller's last message and the tool results that arrived after it."""
    text = ""
    outputs: list[llm.FunctionCallOutput] = []
    for item in chat_ctx.items:
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            text, outputs = item.text_content or "", []
        elif isinstance(item, llm.FunctionCallOutput):
            outputs.append(item)
    return text, outputs


def scripted_reply(script: ScriptSpec, chat_ctx: llm.ChatContext) -> str | llm.FunctionToolCall:
    """The next step of the scripted model: a tool call or the text of its reply."""
    user_text, outputs = _last_turn(chat_ctx)
    rule = matching_rule(script, user_text)
    if rule is None:
        return script.fallback_reply
    result = next((o for o in reversed(outputs) if o.name == rule.tool), None)
    if rule.tool is None or result is not None:
        return rule.reply.replace(RESULT_PLACEHOLDER, result.output if result else "")
    return llm.FunctionToolCall(
        name=rule.tool,
        arguments=json.dumps(rule.arguments),
        call_id=utils.shortuuid("call_"),
    )
