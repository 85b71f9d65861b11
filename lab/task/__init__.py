"""The weak-to-strong task: datasets, strong features, the weak teacher, baselines and PGR."""
