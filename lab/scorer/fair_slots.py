"""The scorer's run slots, shared fairly between tenants (the agents whose submissions are being scored at once).

`capacity` runs go at once. A freed slot goes to the tenant with the fewest runs going, and among those to the one
served least recently: round-robin by tenant, whatever the number of runs each asked for. A tenant with no run
going does not wait for a slot to free: it may take one spare slot beyond the capacity, so that a tenant whose runs
are long (a method that uses all of its CPU time on every run) delays a newcomer by none of them, not by one run's
worth. The spare run gets its CPU from the tenants' equal cgroup weights (Limits.cpu_group), not from more cores.
"""
from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from contextlib import contextmanager

SPARE = 1     # runs beyond the capacity, each for a tenant with none going


class FairSlots:
    def __init__(self, capacity: int, spare: int = SPARE):
        self.capacity, self.spare = capacity, spare
        self._changed = threading.Condition()
        self._running: dict[str, int] = defaultdict(int)
        self._waiting: dict[str, list[int]] = defaultdict(list)    # tenant -> its tickets, in the order asked
        self._served: dict[str, int] = {}                          # tenant -> when it last got a slot
        self._tickets = itertools.count()
        self._turns = itertools.count()

    @contextmanager
    def slot(self, tenant: str):
        """Hold one run slot for `tenant` while the block runs."""
        with self._changed:
            ticket = next(self._tickets)
            self._waiting[tenant].append(ticket)
            try:
                self._changed.wait_for(lambda: self._may_start(tenant, ticket))
            finally:
                self._waiting[tenant].remove(ticket)
                if not self._waiting[tenant]:
                    del self._waiting[tenant]
            self._running[tenant] += 1
            self._served[tenant] = next(self._turns)
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._running[tenant] -= 1
                if not self._running[tenant]:
                    del self._running[tenant]
                self._changed.notify_all()

    def running(self) -> dict[str, int]:
        with self._changed:
            return dict(self._running)

    def _may_start(self, tenant: str, ticket: int) -> bool:
        if self._waiting[tenant][0] != ticket:
            return False                                 # a tenant's own runs go in the order it asked
        going = sum(self._running.values())
        if going < self.capacity:
            return self._turn(self._waiting) == tenant
        if going < self.capacity + self.spare and not self._running.get(tenant):
            return self._turn([t for t in self._waiting if not self._running.get(t)]) == tenant
        return False

    def _turn(self, tenants) -> str:
        """Whose turn it is among these: the fewest runs going, then served least recently."""
        return min(tenants, key=lambda t: (self._running.get(t, 0), self._served.get(t, -1)))
