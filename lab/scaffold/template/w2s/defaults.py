"""The standard choices that every baseline reads. Change a value here to change it everywhere."""

# Which hidden-state layers of all-MiniLM-L6-v2 form the probe's features:
# 0 is the embedding output, 6 the last transformer layer (the sentence embedding).
LAYERS = (4, 5, 6)
STANDARDIZE = True  # z-score each feature, fitted on train + test features together

# The strong probe (see w2s/probe.py).
HIDDEN = 0  # 0: linear probe; > 0: one hidden layer of this width
EPOCHS = 10
BATCH_SIZE = 128  # 0: full batch
LEARNING_RATE = 1e-3
L2 = 0.5  # penalty on the squared weights, added to the mean loss; strong, since the teacher is noisy

# Baseline methods.
CONFIDENT_KEEP = 0.5  # confident.py: fraction of the most confident teacher labels to keep
LOGCONF_ALPHA = 0.5  # logconf.py: final weight of the strong model's own hardened predictions
LOGCONF_WARMUP = 0.2  # logconf.py: fraction of training over which that weight ramps up from 0
SMOOTHING = 0.2  # smooth.py: label smoothing towards 0.5
BOOTSTRAP_ROUNDS = 1  # bootstrap.py: relabel-and-retrain rounds
BOOTSTRAP_KEEP = 0.8  # bootstrap.py: fraction of the strong probe's most confident labels adopted
ELICIT_WEIGHT = 0.3  # elicit.py: weight of the strong model's zero-shot labels in the target

# Short class descriptions for unsupervised elicitation (w2s/strong.py); several per class are averaged.
CLASS_DESCRIPTIONS = {
    0: ["a negative review", "this is bad, I did not like it", "a negative, unhappy text"],
    1: ["a positive review", "this is good, I liked it", "a positive, happy text"],
}
