import math

import pytest

from lab.task.pgr import DatasetScore, mean_se, pgr


def test_pgr_is_the_fraction_of_the_gap_recovered():
    assert pgr(0.66, 0.66, 0.79) == 0
    assert pgr(0.79, 0.66, 0.79) == pytest.approx(1)
    assert pgr(0.70, 0.60, 0.80) == pytest.approx(0.5)
    assert pgr(0.50, 0.60, 0.80) == pytest.approx(-0.5)


def test_pgr_refuses_a_missing_gap():
    with pytest.raises(ValueError, match="does not exceed"):
        pgr(0.7, 0.7, 0.7)


def test_mean_and_standard_error():
    mean, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert se == pytest.approx(math.sqrt(((1.5**2 + 0.5**2) * 2 / 3) / 4))
    assert mean_se([0.3]) == (0.3, 0.0)


def test_dataset_score_summarises_seeds():
    score = DatasetScore.from_accuracies("d", 0.6, 0.8, [0, 1], [0.7, 0.8])
    assert score.acc == pytest.approx(0.75)
    assert score.pgr == pytest.approx(0.75)
    assert score.pgr_se == pytest.approx(0.25)
    assert score.seeds == [0, 1]
