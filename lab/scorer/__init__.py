"""The scorer: evaluate predictions, re-run submitted methods, check their integrity, serve agents."""
