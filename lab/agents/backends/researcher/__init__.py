"""The offline researcher: a real automated researcher with no language model.

It searches the space of weak-to-strong methods that the scaffold's building blocks span (recipes of
w2s/recipe.py: losses, teacher-confidence filtering and reweighting, probe layers and regularisation,
ensembles, self-training, zero-shot elicitation from the strong model; see ../recipes.py), through the
same tools as the claude backend:

    orient      read its notebook, the forum and the leaderboard: every posted recipe, its PGR and
                what the scorer flagged                                                  forum.py
    choose      the best recipe known on an unflagged line (its own or another agent's, fetched from
                that agent's commit), changed along one dimension, its direction's first; now and then
                crossed with the best of another lineage; never a recipe tried before    choice.py
    run         write recipe.json + method.py, run it on one seed in the sandbox         experiment.py
    evaluate    score that one predictions file (budgeted); a promising result gets more seeds
    commit      commit what ran, post the result (good or bad) with its commit and metrics, note it
    submit      only a recipe whose seeds beat its own best unflagged submission by more than the
                noise, on a line the scorer has not flagged; the scorer queues it, and the next
                experiment goes on until its result is in, then posted                 submission.py

stages.py starts an experiment and moves it through its stages (state.Stage); backend.py is the loop;
knowledge.py what it believes of each recipe; prose.py what it writes; budget.py the scorer's budgets.
Everything it knows lives in state.ResearcherState, saved as JSON after every step, so a restarted
agent resumes mid-experiment.
"""
from lab.agents.backends.researcher.backend import MAX_FAIL_STREAK, ResearcherBackend
from lab.agents.backends.researcher.experiment import CONFIRM_SEEDS
from lab.agents.backends.researcher.state import STATE_VERSION
from lab.agents.backends.researcher.submission import beats

__all__ = ["CONFIRM_SEEDS", "MAX_FAIL_STREAK", "STATE_VERSION", "ResearcherBackend", "beats"]
