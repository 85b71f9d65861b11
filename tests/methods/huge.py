# Tries to write a 2 GB predictions file.
import argparse
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
block = b"x" * (1 << 20)
with open(a.out, "wb") as out:
    for _ in range(2048):
        out.write(block)
