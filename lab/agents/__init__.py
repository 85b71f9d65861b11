"""The research agents: supervisor, runner loop, tools, and model backends (claude, researcher, scripted)."""
