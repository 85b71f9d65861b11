"""Logconf: the auxiliary confidence loss of Burns et al. 2023, mixing in the probe's own hardened predictions."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s import defaults, losses
from w2s.io import run
from w2s.probe import train_probe


def predict(task, seed):
    loss = losses.logconf(alpha=defaults.LOGCONF_ALPHA, warmup=defaults.LOGCONF_WARMUP)
    probe = train_probe(task.X_train, task.weak_soft, loss=loss, seed=seed)
    return probe.predict_proba(task.X_test)


if __name__ == "__main__":
    run(predict, __doc__)
