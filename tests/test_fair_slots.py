"""The scorer's run slots (lab/scorer/fair_slots.py), driven by real threads: a freed slot goes round-robin by
tenant, a tenant with none going takes the one spare slot at once, and never more than the capacity plus the spare
go at once."""
from __future__ import annotations

import threading
import time

from conftest import wait_for
from lab.scorer.fair_slots import FairSlots


class Runs:
    """Threads that each hold a slot for a tenant until told to end; the order in which they got one."""

    def __init__(self, slots: FairSlots):
        self.slots, self.started, self.ends, self.lock = slots, [], {}, threading.Lock()

    def ask(self, tenant: str, name: str) -> None:
        self.ends[name] = threading.Event()
        threading.Thread(target=self._hold, args=(tenant, name), daemon=True).start()
        time.sleep(0.05)      # asked in this order

    def _hold(self, tenant: str, name: str) -> None:
        with self.slots.slot(tenant):
            with self.lock:
                self.started.append(name)
            self.ends[name].wait(30)

    def end(self, name: str) -> None:
        self.ends[name].set()

    def wait_started(self, count: int) -> list[str]:
        wait_for(lambda: len(self.started) >= count, 10, interval=0.02, what=f"{count} runs started")
        time.sleep(0.1)       # and no more than that
        return list(self.started)


def test_a_freed_slot_goes_round_robin_by_tenant_and_a_newcomer_takes_the_spare():
    runs = Runs(FairSlots(capacity=2, spare=1))
    for n in range(5):
        runs.ask("agent-1", f"a{n}")
    assert runs.wait_started(2) == ["a0", "a1"]                 # agent-1 alone: every slot
    runs.ask("agent-2", "b0")
    runs.ask("agent-2", "b1")
    runs.ask("agent-3", "c0")
    assert runs.wait_started(3) == ["a0", "a1", "b0"]           # the spare, at once, for one with none going
    assert runs.slots.running() == {"agent-1": 2, "agent-2": 1}
    runs.end("b0")                                              # the spare again: agent-3 has none going
    assert runs.wait_started(4)[-1] == "c0"
    runs.end("a0")                                              # a slot: the fewest going, then the least served
    assert runs.wait_started(5)[-1] == "b1"
    runs.end("a1")
    runs.end("c0")
    assert runs.wait_started(6)[-1] == "a2"
    assert sum(runs.slots.running().values()) <= 3
    for name in list(runs.ends):
        runs.end(name)
    wait_for(lambda: len(runs.started) == 8 and not runs.slots.running(), 10, what="every run ended")


def test_never_more_than_the_capacity_and_the_spare_go_at_once():
    slots, most, going, lock = FairSlots(capacity=2, spare=1), [0], [0], threading.Lock()

    def run(tenant: str) -> None:
        with slots.slot(tenant):
            with lock:
                going[0] += 1
                most[0] = max(most[0], going[0])
            time.sleep(0.01)
            with lock:
                going[0] -= 1

    threads = [threading.Thread(target=run, args=(f"agent-{n % 5}",)) for n in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most[0] == 3 and not slots.running()
