"""The hf kind's scaffold: what `lab init` commits for `kind = "hf"` (see README.md here)."""
