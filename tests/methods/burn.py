"""Computes forever: only a CPU-time limit (or the wall-clock backstop) stops it."""
while True:
    pass
