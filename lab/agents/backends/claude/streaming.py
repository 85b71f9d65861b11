"""One call, streamed through the SDK's own helper, `client.messages.stream()`, which accumulates the reply.

Every call streams: a long reply is never refused for its length nor cut by a timeout on the whole
reply, only by the wait for its next event. Where the stream breaks after it began, the usage the
API reported so far (message_start's input and cache tokens, and any output counted since) is handed
to `on_broken` before the error goes on to be retried, so that the ledger keeps what the broken call cost.
"""
from __future__ import annotations

from collections.abc import Callable


def streamed(client, params: dict, on_broken: Callable[[object], None]):
    """The call's final Message, accumulated by the SDK from the stream's events."""
    with client.messages.stream(**params) as stream:
        began = False
        try:
            for event in stream:
                began = began or event.type == "message_start"
            return stream.get_final_message()
        except Exception:       # whatever broke the stream, what it cost so far is kept; the error goes on
            if began:
                on_broken(stream.current_message_snapshot.usage)
            raise
