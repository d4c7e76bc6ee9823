"""The vocabulary that study execution writes and results read: names shared by both wings, so
that neither imports the other (polytask.results never imports polytask.study).

Keys and names added here are the ones a writer and a reader must spell alike; a module that
only writes a name for itself keeps it.
"""

from __future__ import annotations

# A trial's phase (MLflow tag polytask.phase): a searched candidate's search trials, then its
# evaluation trials (the selected configuration on every seed); every other candidate's fixed trials.
SEARCH, EVALUATION, FIXED = "search", "evaluation", "fixed"
PHASES = (SEARCH, EVALUATION, FIXED)
