import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
rows = [json.loads(line) for line in open(f"{a.data}/test.jsonl")]
with open(a.out, "w") as out:
    for r in rows:
        out.write(json.dumps({"id": r["id"], "label": 1, "p1": float("nan")}) + "\n")
