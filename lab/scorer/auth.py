"""Who calls the scorer service: each agent's runner proves it is that agent with a token only it holds.

The service keeps a random key in <state>/private/scorer.key (mode 0600: the lab's user alone reads it; no sandbox
binds the state folder). An agent's token is HMAC-SHA256(key, agent). The supervisor hands each runner its own token
in the runner's environment (TOKEN_ENV), which the runner takes out of its environment at once; the sandbox builds
every command's environment from an allow-list (lab.sandbox.bwrap), so the token never reaches the agent's
commands, which have no network anyway. A call carries the name it acts as and the token (AGENT_HEADER and a Bearer
Authorization header); the service recomputes the token and answers as that agent only.

The person is "person": whoever can read the key file (root or the lab's user) can sign as anyone (KeyCredentials),
which is what the lab's own tools and tests use.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lab.errors import Forbidden, Unauthorized
from lab.state_layout import StateLayout

TOKEN_ENV = "LAB_SCORER_TOKEN"
AGENT_HEADER = "X-Lab-Agent"
PERSON = "person"


def key_path(state_dir: Path) -> Path:
    return StateLayout(Path(state_dir)).scorer_key


def load_or_make_key(state_dir: Path) -> bytes:
    """The lab's key, made on first use, readable by the lab's user alone. It appears whole or not at all (written
    aside, then linked into place), so a full disk or a crash never leaves a damaged key behind."""
    path = key_path(state_dir)
    if path.exists():
        return read_key(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.unlink(missing_ok=True)
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            pass               # another scorer of this lab made it first: theirs is the key
    finally:
        aside.unlink(missing_ok=True)
    return read_key(state_dir)


def read_key(state_dir: Path) -> bytes:
    """The key, for the lab's user (a PermissionError for anyone else); never through a link."""
    fd = os.open(key_path(state_dir), os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as handle:
        key = handle.read().strip()
    if len(key) < 32:
        raise Unauthorized(f"the scorer's key file {key_path(state_dir)} is damaged: delete it and start the lab again")
    return key.encode()


def token_for(key: bytes, agent: str) -> str:
    return hmac.new(key, agent.encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, headers) -> str:
    """The name a call acts as, once its token proves it; Unauthorized where it has no valid token."""
    agent = headers.get(AGENT_HEADER) or ""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if not agent or scheme != "Bearer" or not token:
        raise Unauthorized(f"the scorer answers only its lab's runners: send the {AGENT_HEADER} header and "
                           "'Authorization: Bearer <token>'")
    if not hmac.compare_digest(token_for(key, agent), token.strip()):
        raise Unauthorized("the token does not match the name in the call")
    return agent


def check_acts_as(caller: str, agent: str) -> None:
    """A caller may act as itself only."""
    if caller != agent:
        raise Forbidden(f"this token belongs to {caller[:40]}; it cannot act as another agent")


@dataclass(frozen=True)
class AgentCredentials:
    """One runner's: its own name and token, whatever a call names."""
    agent: str
    token: str

    def headers(self, agent: str | None) -> dict[str, str]:
        return {AGENT_HEADER: self.agent, "Authorization": f"Bearer {self.token}"}

    @classmethod
    def from_environment(cls, agent: str) -> "AgentCredentials":
        """The token the supervisor gave this runner, taken out of its environment so no child inherits it."""
        token = os.environ.pop(TOKEN_ENV, "")
        if not token:
            raise Unauthorized(f"the runner of {agent} was started without its scorer token ({TOKEN_ENV})")
        return cls(agent, token)


@dataclass(frozen=True)
class KeyCredentials:
    """The key's holder (the person, the lab's tools): signs as whoever a call names, "person" where none."""
    key: bytes

    def headers(self, agent: str | None) -> dict[str, str]:
        name = agent or PERSON
        return {AGENT_HEADER: name, "Authorization": f"Bearer {token_for(self.key, name)}"}

    @classmethod
    def of_lab(cls, state_dir: Path) -> "KeyCredentials":
        return cls(read_key(state_dir))
