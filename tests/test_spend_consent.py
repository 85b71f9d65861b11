"""Never spend silently: `lab start` with backend = "auto" and a key in the environment says what Claude agents would
cost and asks, refuses where it cannot ask, and `make lab`'s `lab start --offline` never lets the lab see the key.

Real `lab` processes throughout: a pseudo-terminal for the question, the real supervisor and runners against the
loopback Messages API for the agents that were agreed to.
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import psutil
import pytest

from conftest import LAB, lab_status, make_lab, requires_bwrap, run_lab, wait_for, write_config
from fake_messages_api import FakeMessagesAPI, text_reply
from lab import config
from lab.agents.backends.claude.estimate import outlook

KEY = {"ANTHROPIC_API_KEY": "sk-test-key"}


def lab_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}, **extra}


def lab_pids(folder) -> list[int]:
    marker = str(folder / "lab.toml")
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if marker in (p.info["cmdline"] or []) and any("lab.agents" in c for c in p.info["cmdline"])]


def environ(pid: int) -> dict[str, str]:
    return psutil.Process(pid).environ()


def in_a_terminal(args: list[str], cwd, env: dict, answer: str, timeout: float = 120) -> tuple[int, str]:
    """Run `lab ARGS` with a pseudo-terminal as its stdin and stdout; answer its question once it is asked."""
    main, child = pty.openpty()
    proc = subprocess.Popen([*LAB, *args], cwd=cwd, env=env, stdin=child, stdout=child, stderr=child)
    os.close(child)
    out, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:   # the other end closed
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(main, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(main)
    return code, out.decode(errors="replace").replace("\r\n", "\n")


def test_auto_with_a_key_and_no_terminal_refuses_in_one_line_and_creates_nothing(tmp_path):
    write_config(tmp_path)
    seen = outlook(config.load(tmp_path / "lab.toml"))
    for args in (["start"], ["start", "--detach"]):
        result = subprocess.run([*LAB, *args], cwd=tmp_path, env=lab_env(**KEY), capture_output=True, text=True)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert (f'backend = "auto" and ANTHROPIC_API_KEY is set, so this would start 9 Claude agents '
                f"(claude-sonnet-5-5 x9) at about ${seen.lab_hourly:.2f} an hour, against a $150 budget; nobody was "
                "asked: pass --yes") in result.stderr
        assert "--offline" in result.stderr and 'agents.backend = "claude"' in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]


def test_auto_with_a_key_in_a_terminal_says_what_it_would_cost_and_asks(tmp_path):
    write_config(tmp_path)
    (tmp_path / "lab.toml").write_text((tmp_path / "lab.toml").read_text() + '\n[claude]\nmodels = { "agent-2" = '
                                       '"claude-opus-5-5" }\nefforts = { "agent-2" = "high" }\n')
    seen = outlook(config.load(tmp_path / "lab.toml"))
    code, out = in_a_terminal(["start"], tmp_path, lab_env(**KEY), answer="n")
    assert code == 1, out
    assert 'backend = "auto" and ANTHROPIC_API_KEY is set, so the agents would be Claude, and spend money:' in out
    assert (f"8 agents on claude-sonnet-5-5 (adaptive thinking, effort high): about "
            f"${seen.hourly['agent-1']:.2f} an agent-hour") in out
    assert (f"1 agent on claude-opus-5-5 (adaptive thinking, effort high): about "
            f"${seen.hourly['agent-2']:.2f} an agent-hour") in out
    assert "budget: $20.00 an agent, $150.00 the lab" in out
    assert f"about ${seen.lab_hourly:.2f} an hour in all" in out
    assert "Start 9 Claude agents? [y/N]" in out and "nothing started" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]


@pytest.mark.parametrize("toml,args,expected", [
    ('[agents]\nbackend = "claude"\n[claude]\nmodel = "claude-opus-9"\n', ["start"],
     "lab.toml: claude.model is 'claude-opus-9', which has no known price: set [claude.prices] input, output, "
     "cache_write, cache_write_1h and cache_read (dollars per million tokens)"),
    ('[claude]\nmodel = "claude-opus-9"\n', ["start", "--yes"], "which has no known price"),
    ('[agents]\nbackend = "claude"\n', ["start", "--offline"],
     'agents.backend = "claude" is not offline: `lab start --offline` (what `make lab` runs) starts the offline '
     "researcher only"),
    ('[claude]\nmodel = "claude-opus-5-5"\nthinking = "off"\n', ["start", "--yes"],
     'claude-opus-5-5 (agent-1) always thinks and refuses thinking off'),
], ids=["unknown-model-named-backend", "unknown-model-auto-yes", "offline-but-claude-named", "refused-thinking"])
def test_what_cannot_start_is_one_line_before_anything_is_created(tmp_path, toml, args, expected):
    (tmp_path / "lab.toml").write_text(toml)
    result = subprocess.run([*LAB, *args], cwd=tmp_path, env=lab_env(**KEY), capture_output=True, text=True)
    assert result.returncode == 2 and expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]


def auto_lab(lab_dir, folder, extra: str = "") -> object:
    folder = make_lab(lab_dir, folder, [], count=1, extra=extra)
    text = (folder / "lab.toml").read_text().replace('backend = "scripted"', 'backend = "auto"')
    (folder / "lab.toml").write_text(text.replace("shell_timeout_s = 120", "shell_timeout_s = 120\nstep_pause_s = 0.3"))
    return folder


@requires_bwrap
def test_offline_start_runs_the_researcher_and_no_process_of_the_lab_holds_the_key(lab_dir, tmp_path):
    folder = auto_lab(lab_dir, tmp_path / "offline")
    try:
        result = subprocess.run([*LAB, "start", "--offline", "--detach"], cwd=folder, env=lab_env(**KEY),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "agents use the offline researcher (ANTHROPIC_API_KEY is not used)" in result.stdout
        wait_for(lambda: lab_status(folder)["agents"] and lab_status(folder)["agents"][0]["state"] == "running",
                 what="the researcher running")
        agent = lab_status(folder)["agents"][0]
        assert (agent["backend"], agent["model"]) == ("researcher", None)
        pids = lab_pids(folder)
        assert pids and all("ANTHROPIC_API_KEY" not in environ(pid) for pid in pids)
    finally:
        run_lab("stop", cwd=folder)
    assert not lab_pids(folder)


@requires_bwrap
def test_agreed_claude_agents_run_and_status_shows_their_model_and_spend_rate(lab_dir, tmp_path):
    reply = text_reply("Iteration over; the notebook is current.", input_tokens=2000, output_tokens=300,
                       cache_read=20_000)
    with FakeMessagesAPI(responder=lambda request: reply) as api:
        folder = auto_lab(lab_dir, tmp_path / "claude", extra=f'\n[claude]\nbase_url = "{api.url}"\n'
                                                                  "retry_base_s = 0.01\n")
        try:
            result = subprocess.run([*LAB, "start", "--yes", "--detach"], cwd=folder, env=lab_env(**KEY),
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr
            assert "Claude agents (backend auto: ANTHROPIC_API_KEY is set, so agents use claude):" in result.stdout
            assert "1 agent on claude-sonnet-5-5 (adaptive thinking, effort high): about $" in result.stdout
            wait_for(lambda: lab_status(folder)["agents"][0]["dollars"] > 0.02, what="Claude agent spending")
            report = lab_status(folder)
            agent, lab = report["agents"][0], report["lab"]
            assert (agent["backend"], agent["model"], agent["effort"]) == ("claude", "claude-sonnet-5-5", "high")
            assert agent["dollars_per_hour"] > 0 and lab["dollars_per_hour"] == pytest.approx(
                agent["dollars_per_hour"], rel=0.5)
            assert agent["dollars_left"] == pytest.approx(20 - agent["dollars"], abs=0.05)
            assert lab["dollars_left"] == pytest.approx(150 - lab["dollars"], abs=0.05)
            text = run_lab("status", cwd=folder, check=True).stdout
            assert "claude-sonnet-5-5 (high)" in text and "an hour now" in text and "left of the budget" in text
            assert all("ANTHROPIC_API_KEY" in environ(pid) for pid in lab_pids(folder))
        finally:
            run_lab("stop", cwd=folder)
    assert not lab_pids(folder)
    bodies = api.bodies()
    assert bodies and all(b["stream"] and b["model"] == "claude-sonnet-5-5" for b in bodies)
    assert not [r.problem for r in api.requests if r.problem]


def test_the_tui_start_refuses_spending_nobody_agreed_to(tmp_path, monkeypatch):
    """The TUI's S (and a supervisor started by hand) cannot ask: control.start_lab without `lab start`'s choice."""
    from lab.agents import control
    from lab.agents.backends import SpendNotConfirmed

    write_config(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key")
    with pytest.raises(SpendNotConfirmed, match="start from a terminal with `lab start`, which says what it would "
                                                 "cost and asks"):
        control.start_lab(config.load(tmp_path / "lab.toml"), str(tmp_path / "lab.toml"), sandbox=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]
    result = subprocess.run([sys.executable, "-m", "lab.agents.supervisor", "--config", str(tmp_path / "lab.toml")],
                            cwd=tmp_path, env=lab_env(**KEY), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "error: backend = \"auto\" and ANTHROPIC_API_KEY is set" in result.stdout
