"""lab: a terminal-native lab where research agents study weak-to-strong supervision."""
