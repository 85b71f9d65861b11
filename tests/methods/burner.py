"""The slowest method a queue must take: on every run it burns CPU up to just under its CPU-time limit (it reads the
limit from its own RLIMIT_CPU, which the sandbox sets a little above the run's), then answers. It fails no run and
hangs on none, so nothing stops it early: it holds each run slot as long as the limits allow."""
import argparse, json, resource, time
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
budget = 60.0 if soft == resource.RLIM_INFINITY else 0.9 * (soft - 2)
while time.process_time() < budget:
    pass
rows = [json.loads(line) for line in open(f"{a.data}/test.jsonl")]
with open(a.out, "w") as out:
    for i, r in enumerate(rows):
        out.write(json.dumps({"id": r["id"], "label": int(i < len(rows) // 2)}) + "\n")
