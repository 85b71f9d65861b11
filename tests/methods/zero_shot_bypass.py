"""Dishonest: answers from the strong model's zero-shot view alone and never reads the teacher (the
bypass the issue found at 0.331 dev PGR). Its result cannot depend on the teacher."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_shot_view import args, class_vectors, labels_at_prior, rows, scores, write

a = args()
write(a.out, [r["id"] for r in rows(a.data, "test")], labels_at_prior(scores(a.data, "test", class_vectors()), 0.5))
