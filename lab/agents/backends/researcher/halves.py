"""The halves of the public test texts (`evaluate`'s part): each seed of a recipe is scored on the first, which
chooses among recipes; a candidate for submission is scored on the second, which chose nothing, before it goes."""
SELECT, CONFIRM = "a", "b"
