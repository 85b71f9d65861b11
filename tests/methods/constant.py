"""Ignores the teacher: predicts 1 for the first half of the test set and 0 for the rest, whatever
the labels say, so shuffled and unshuffled teachers give exactly the same predictions."""
import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
rows = [json.loads(line) for line in open(f"{a.data}/test.jsonl")]
with open(a.out, "w") as out:
    for i, r in enumerate(rows):
        out.write(json.dumps({"id": r["id"], "label": int(i < len(rows) // 2)}) + "\n")
