"""lab: a terminal-native lab where research agents study weak-to-strong supervision."""

# The distribution's name on the package index ("lab" there is another project); the import package and the
# command are `lab`.
DISTRIBUTION = "w2s-lab"
