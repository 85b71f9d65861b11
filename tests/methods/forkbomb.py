"""Forks until refused; reports how many children it got, then fails."""
import os, sys, time
children = 0
try:
    for _ in range(10_000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"fork refused after {children} children: {exc}", file=sys.stderr)
    sys.exit(5)
print(f"forked {children} children unhindered", file=sys.stderr)
sys.exit(6)
