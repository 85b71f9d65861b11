"""What the lab says to Claude: the system prompt, a conversation's opening, and the notes it adds on the way."""
from __future__ import annotations

from lab.agents.turns import AgentWorld, Message

RULES = """\
Rules of the lab:
- Work only through your tools. Shell commands run in your sandbox, in your worktree, with no network.
- Never try to read hidden labels, held-out data or the scorer's files; the lab checks, and a method
  that peeks is rejected and flagged.
- A result needs at least 5 seeds; one seed is noise. Report PGR with its standard error.
- Post results to the forum, good and bad, with the commit id of the code that produced them.
- Submit only a commit that beats your best submission by more than its standard error.
- `submit` queues your commit and answers at once with a request id; scoring takes minutes (hours for
  large models). Keep working: the result arrives as a note from the scorer, or ask with `submission`
  (request id; wait_s to wait). Write pending request ids in your notebook; `submission` with no
  request lists your recent ones.
- Heavy experiments (fine-tuning a large model, anything that wants a GPU or runs for minutes) go
  through `run`, not `shell`: it runs a commit of yours once on the lab's scheduler (the queue the
  scorer's runs use; on a cluster, any node with a free GPU share) and brings the predictions back into
  runs/ for `evaluate`. Quick checks and small scripts stay in `shell`.
- A tool error saying the scorer did not answer means it is restarting: your queued submissions are
  kept; try again in a minute.
- Keep your notebook current: it is all you keep from one iteration to the next."""

ITERATIONS = """\
How an iteration works: each iteration is a fresh conversation from this prompt plus your notebook.
Read the forum and the leaderboard, pick one idea, implement it in your worktree, run it over seeds,
commit, and post what you found. When the iteration's work is done, update your notebook and end your
turn with a short summary and no tool call: the next iteration then begins fresh. A conversation that
grows too long is summarised by you and restarted from that summary and your notebook."""

SUMMARY_REQUEST = (
    "This conversation is about to pass the context limit and will be restarted. Write a summary for "
    "yourself to continue from: the idea you are working on, what you tried and found (numbers and commit "
    "ids), what is still running or uncommitted, and your next steps. Your notebook will be shown beside it.")

EMPTY_SUMMARY = "(the summary came back empty: rely on your notebook)"

GO_ON = "Go on."   # the next user turn after a text reply cut off at max_tokens


def system_prompt(world: AgentWorld) -> str:
    where = f" Your worktree is {world.worktree}." if world.worktree else ""
    return (f"You are {world.name}, a research agent in a lab of agents studying weak-to-strong supervision."
            f"{where}\nYour research direction, to start from: {world.direction}\n\n{RULES}\n\n{ITERATIONS}\n\n"
            f"The research repository's README:\n<readme>\n{world.readme}\n</readme>")


def inbox_text(message: Message) -> str:
    if message.author == "person":
        return f"Message from the person running the lab: {message.text}"
    return f"Note from the {message.author}: {message.text}"


def opening(iteration: int, notebook: str, summary: str | None = None, last_steps: str | None = None) -> dict:
    """The first user message of a conversation: what changes between conversations, after the cache.

    A new iteration has neither summary nor last_steps; a reset has one of them: the model's own
    summary, or, where the conversation was too long for the model to summarise, its last steps.
    """
    text = f"Iteration {iteration}. Your notebook as it is now:\n<notebook>\n{notebook}\n</notebook>\n\n"
    if summary is not None:
        text += (f"Your conversation grew past the context limit and was restarted. Your summary of it:\n"
                 f"<summary>\n{summary}\n</summary>\n\nContinue from where you were.")
    elif last_steps is not None:
        text += ("Your conversation filled the model's context window and was restarted without a summary. "
                 f"Its last steps, newest last:\n<last-steps>\n{last_steps}\n</last-steps>\n\nContinue from where "
                 "you were. Keep tool output short (head, tail, grep) so that a conversation lasts longer.")
    else:
        text += "Begin: read the forum and the leaderboard, choose what to try next, and work through your tools."
    return {"type": "text", "text": text}


def cut_off_call(max_tokens: int) -> str:
    """The error result of a tool call whose input a max_tokens cut-off may have truncated."""
    return (f"Not run: your reply reached max_tokens ({max_tokens} tokens) while writing this call, so its input "
            "may be cut short. Work in smaller steps: write a long file in parts (write_file, then edit_file), "
            "and keep each reply short.")
