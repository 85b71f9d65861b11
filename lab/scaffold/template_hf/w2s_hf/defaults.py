"""The baselines' settings. Training hyperparameters (epochs, lr, LoRA rank, ...) come from meta["train"]."""

LOSS = "soft_ce"  # vanilla: cross entropy against the teacher's soft labels
CONFIDENT_KEEP = 0.5  # confident.py: fraction of the most confident teacher labels kept (per class)
LOGCONF_ALPHA = 0.5  # logconf.py: final weight of the strong model's own hardened predictions
LOGCONF_WARMUP = 0.2  # logconf.py: fraction of training over which that weight ramps up from 0
