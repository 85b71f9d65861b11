"""Elementwise functions in numpy, stable over the whole float range, shared by the probe and the encoder."""
import numpy as np

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7 (float32's own precision), since numpy has no erf.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def erf(x):
    t = 1 / (1 + _P * np.abs(x))
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return np.sign(x) * (1 - poly * np.exp(-x * x))


def normal_cdf(x):
    return 0.5 * (1 + erf(x * np.float32(0.7071067811865476)))


def gelu(x):
    """x * P(N(0, 1) <= x): the exact GELU of BERT and of torch.nn.GELU()."""
    return x * normal_cdf(x)


def gelu_derivative(x):
    return normal_cdf(x) + x * np.exp(-0.5 * x * x) * np.float32(0.3989422804014327)
