"""Running untrusted code: bubblewrap sandboxes with resource limits."""
from lab.sandbox.base import Bind, Limits, RunResult, Sandbox
from lab.sandbox.select import make_sandbox

__all__ = ["Bind", "Limits", "RunResult", "Sandbox", "make_sandbox"]
