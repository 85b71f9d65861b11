import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
with open(a.out, "w") as out:
    for i in range(3):
        out.write(json.dumps({"id": f"made-up-{i}", "label": 1}) + "\n")
