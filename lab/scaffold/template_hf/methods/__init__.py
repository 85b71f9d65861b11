"""Baseline methods (each a script: python methods/NAME.py --data DIR --out PREDICTIONS --seed N)."""
