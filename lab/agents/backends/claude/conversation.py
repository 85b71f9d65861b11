"""A conversation as the Messages API takes it: plain dicts, roles alternating, every tool_use answered."""
from __future__ import annotations

import json

from lab.agents.turns import ToolCall

NO_REPLY = {"type": "text", "text": "(no reply)"}   # the API refuses an assistant message without content
DIGEST_CHARS = 4000
THINKING = ("thinking", "redacted_thinking")


def assistant_blocks(content) -> list[dict]:
    """A reply's content blocks as request blocks; thinking blocks exactly as received (the API checks them)."""
    blocks = []
    for block in content:
        if block.type == "text" and block.text:
            blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
        elif block.type == "thinking":
            blocks.append({"type": "thinking", "thinking": block.thinking, "signature": block.signature})
        elif block.type == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": block.data})
    if not any(b["type"] in ("text", "tool_use") for b in blocks):
        blocks.append(dict(NO_REPLY))
    return blocks


def calls_of(blocks: list[dict]) -> list[ToolCall]:
    return [ToolCall(b["id"], b["name"], dict(b["input"])) for b in blocks if b["type"] == "tool_use"]


def answering_without_thinking(messages: list[dict]) -> bool:
    """The last turn called tools and has no thinking block first, which extended thinking requires of it."""
    if not messages or messages[-1]["role"] != "assistant":
        return False
    content = messages[-1]["content"]
    return any(b["type"] == "tool_use" for b in content) and content[0]["type"] not in THINKING


def interrupted(messages: list[dict], pending: list[dict]) -> list[dict]:
    """Error results for the tool calls of a last assistant message that a restart left unanswered."""
    if not messages or messages[-1]["role"] != "assistant":
        return []
    answered = {block["tool_use_id"] for block in pending}
    return [{"type": "tool_result", "tool_use_id": block["id"], "content": "interrupted by a restart",
             "is_error": True} for block in messages[-1]["content"]
            if block["type"] == "tool_use" and block["id"] not in answered]


def with_user(messages: list[dict], blocks: list[dict]) -> list[dict]:
    """messages plus a user turn of blocks, merged into the last message if that is a user's (roles alternate)."""
    if messages and messages[-1]["role"] == "user":
        return messages[:-1] + [{"role": "user", "content": messages[-1]["content"] + blocks}]
    return messages + [{"role": "user", "content": blocks}]


def describe(calls: list[ToolCall], text: str) -> str:
    """A few words for `lab status`: the first call and its main argument, or the first line of text."""
    if not calls:
        return (text.strip().splitlines() or ["(no text)"])[0][:80]
    head = next((v for v in calls[0].arguments.values() if isinstance(v, str)), "")
    head = (head.strip().splitlines() or [""])[0][:60]
    more = f" (+{len(calls) - 1} more)" if len(calls) > 1 else ""
    return f"calling {calls[0].name}: {head}{more}" if head else f"calling {calls[0].name}{more}"


def digest(messages: list[dict], limit: int = DIGEST_CHARS) -> str:
    """The end of a conversation as plain lines, newest last, within limit characters.

    For a restart when the conversation is too long for the model to summarise: what the agent
    wrote and called and what came back, after the opening (which the new opening replaces).
    """
    lines = []
    for message in messages[1:]:
        for block in message["content"]:
            if block["type"] == "text" and block["text"] != NO_REPLY["text"]:
                who = "you wrote" if message["role"] == "assistant" else "message"
                lines.append(f"{who}: {_short(block['text'], 600)}")
            elif block["type"] == "tool_use":
                lines.append(f"you called {block['name']} {_short(json.dumps(block['input']), 300)}")
            elif block["type"] == "tool_result":
                error = " (error)" if block.get("is_error") else ""
                lines.append(f"result{error}: {_short(str(block['content']), 300)}")
    kept, size = [], 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > limit:
            break
        kept.append(line)
    return "\n".join(reversed(kept)) or "(nothing since the conversation began)"


def _short(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars] + " [...]"
