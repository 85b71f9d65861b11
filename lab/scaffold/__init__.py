"""What `lab init` commits into the research repository: the agents' starting library and baselines."""
from pathlib import Path

TEMPLATE = Path(__file__).parent / "template"
BASELINES = ("vanilla", "confident", "logconf", "smooth", "bootstrap", "elicit")
