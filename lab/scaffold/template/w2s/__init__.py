"""Building blocks for weak-to-strong methods: data, probes, losses, example selection, elicitation.

    from w2s.data import load_task          # the data folder as a Task (features, weak_soft, ids)
    from w2s.probe import train_probe       # a linear probe / small MLP in numpy (torch_probe: the same in torch)
    from w2s import losses, select, strong  # losses, confidence filtering, zero-shot elicitation
    from w2s.io import run                  # the method contract: arguments in, predictions out
    from w2s import defaults                # the standard layers and hyperparameters
"""
