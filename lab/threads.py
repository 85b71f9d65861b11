"""How many threads numerical libraries start, set through the environment before they load (they read it once)."""
from __future__ import annotations


def thread_env(threads: int) -> dict[str, str]:
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "NUMEXPR_NUM_THREADS": n, "TOKENIZERS_PARALLELISM": "false"}


# The lab's own daemons (supervisor, zygote, runners) start processes from many threads: a BLAS thread pool in them
# is what a fork handler waits for, so their numerical work runs on one thread. Method runs get their own count.
DAEMON_ENV = thread_env(1)
