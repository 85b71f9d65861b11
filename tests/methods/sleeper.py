"""The worst method for a queue: answers at once on seed 0 (the first dev run, which rejects a broken method) and
sleeps on every other run, using no CPU, to hold its run slot."""
import argparse, json, time
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
if a.seed != "0":
    time.sleep(3600)
rows = [json.loads(line) for line in open(f"{a.data}/test.jsonl")]
with open(a.out, "w") as out:
    for i, r in enumerate(rows):
        out.write(json.dumps({"id": r["id"], "label": int(i < len(rows) // 2)}) + "\n")
