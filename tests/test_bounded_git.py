"""run_capped: a host-side git that prints too much, runs too long or asks for too much memory is stopped."""
from __future__ import annotations

import os
import sys

from lab.scaffold.bounded import run_capped

ENV = {"PATH": os.environ["PATH"]}


def test_output_past_the_cap_stops_the_process():
    got = run_capped(["yes", "bomb"], ENV, "/", max_bytes=10_000, timeout_s=10, memory_mb=64)
    assert got.cut and len(got.out) == 10_000 and got.returncode is None and "10,000 bytes" in got.why()


def test_a_process_past_its_time_is_stopped():
    got = run_capped(["sleep", "30"], ENV, "/", max_bytes=100, timeout_s=0.5, memory_mb=64)
    assert got.stopped == "time" and not got.ok and "0.5 s" in got.why()


def test_memory_past_the_limit_fails_the_process():
    grab = "b = bytearray(400 << 20); print('got it')"
    got = run_capped([sys.executable, "-c", grab], ENV, "/", max_bytes=100, timeout_s=10, memory_mb=200)
    assert not got.ok and b"got it" not in got.out and "MemoryError" in got.stderr


def test_input_is_fed_and_a_small_output_is_whole():
    got = run_capped(["cat"], ENV, "/", max_bytes=1 << 20, timeout_s=10, memory_mb=64, input=b"x" * 300_000)
    assert got.ok and got.out == b"x" * 300_000 and got.why() == ""
