"""The `hf` task kind: people bring their own datasets as JSONL files, checked on load."""
