import argparse
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
open(a.out, "w").write("this is not json\n")
