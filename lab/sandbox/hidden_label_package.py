"""Bound, in every bwrap sandbox, over a label package's `__init__.py` (and over a label module's file) inside
the empty read-only folder that covers it: importing the package fails as if it were not installed. The lab
never imports this module."""
raise ModuleNotFoundError(f"No module named {__name__!r}: a label package, hidden in the sandbox", name=__name__)
