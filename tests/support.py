"""Helpers the tests share: synthetic data, a small study spec, a recording reporter."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pandas as pd
import torch

from polytask.training.train import Reporter, TrialOutcome

POSITIVE = ["good", "great", "excellent", "moving", "brilliant", "delightful"]
NEGATIVE = ["bad", "awful", "boring", "dull", "clumsy", "tedious"]
PLOT = ["follows", "young", "family", "town", "journey", "discovers", "secret", "war"]
FILLER = ["the", "a", "film", "movie", "this", "is", "and", "with", "of", "actor", "scene", "story"]


def synthetic_rows(count: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        if rng.random() < 0.3:
            words = rng.choices(PLOT, k=6) + rng.choices(FILLER, k=6)
            kind, sentiment = "plot", None
        else:
            fresh = rng.random() < 0.55
            words = rng.choices(POSITIVE if fresh else NEGATIVE, k=2) + rng.choices(FILLER, k=5)
            kind, sentiment = "review", ("fresh" if fresh else "rotten")
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "kind": kind, "sentiment": sentiment})
    return pd.DataFrame(rows)


def study_dict(text_data: dict[str, Path], **overrides) -> dict:
    """A small valid study spec (as the YAML would load) over the synthetic data."""
    spec = {
        "name": "tiny",
        "data": {
            "source": {"kind": "files", "train": str(text_data["train"]), "validation": str(text_data["validation"]), "test": str(text_data["test"])},
            "text_column": "review",
        },
        "tasks": [
            {"name": "subjectivity", "label_column": "kind"},
            {"name": "sentiment", "label_column": "sentiment"},
        ],
        "encoder": {"kind": "random", "hidden_size": 32, "layers": 2, "heads": 2, "intermediate_size": 64, "vocab_size": 200, "max_length": 32},
        "candidates": [{"weighting": "equal"}],
        "seeds": [0],
        "training": {"epochs": 2, "steps_per_epoch": 6, "batch_size": 16, "eval_batch_size": 64, "learning_rate": 3e-3},
    }
    spec.update(overrides)
    return spec


class Recorder(Reporter):
    """Keeps what a trial reports; retry states are serialised at once, as Tune does (the live
    state holds the optimizer's tensors, which training goes on changing). The last epoch is
    recorded as the others, with no state; its outcome is kept as ``outcome``."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict]] = []
        self.epochs: list[tuple[int, dict, dict | None]] = []
        self.outcome: TrialOutcome | None = None

    def final(self, epoch, outcome):
        self.outcome = outcome
        self.epoch(epoch, outcome.metrics, None)

    def step(self, step, metrics):
        self.steps.append((step, metrics))

    def epoch(self, epoch, metrics, state):
        if state is not None:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            state = torch.load(buffer, weights_only=True)
        self.epochs.append((epoch, metrics, state))


PEOPLE = [["alice"], ["bob", "smith"], ["carol", "jones"]]
PLACES = [["paris"], ["new", "york"], ["london"]]
TOPICS = {"sport": ["match", "goal", "team"], "music": ["song", "band", "concert"], "food": ["bread", "cheese", "soup"]}


def synthetic_tagged_rows(count: int, seed: int) -> pd.DataFrame:
    """Rows for every task type on one text: ``words`` (a list), ``tags`` (BIO: PER and LOC
    entities), ``topics`` ("|"-joined labels, possibly none), ``score`` (a number: 2.5 per
    positive word + 10) and ``sentiment`` (fresh/rotten)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words, tags = [], []
        fresh = rng.random() < 0.5
        topics = sorted(t for t in TOPICS if rng.random() < 0.4)
        positives = rng.randint(0, 3) if fresh else 0
        pieces = [[w] for w in rng.choices(FILLER, k=4)]
        pieces += [[w] for w in rng.choices(POSITIVE, k=positives)] + [[w] for w in rng.choices(NEGATIVE, k=0 if fresh else 2)]
        pieces += [[rng.choice(TOPICS[t])] for t in topics]
        entities = [("PER", rng.choice(PEOPLE)) for _ in range(rng.randint(0, 2))] + [("LOC", rng.choice(PLACES)) for _ in range(rng.randint(0, 1))]
        rng.shuffle(pieces)
        for kind, span in entities:
            at = rng.randint(0, len(pieces))
            pieces.insert(at, [(kind, w) for w in span])
        for piece in pieces:
            for k, item in enumerate(piece):
                if isinstance(item, tuple):
                    words.append(item[1])
                    tags.append(("B-" if k == 0 else "I-") + item[0])
                else:
                    words.append(item)
                    tags.append("O")
        rows.append({"words": words, "tags": tags, "topics": "|".join(topics), "score": 10.0 + 2.5 * positives, "sentiment": "fresh" if fresh else "rotten"})
    return pd.DataFrame(rows)


def synthetic_topic_rows(count: int, seed: int) -> pd.DataFrame:
    """A second corpus for one-dataset-per-task studies: ``body`` texts whose ``topic`` (sport
    or music) shows in their words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        topic = rng.choice(["sport", "music"])
        words = rng.choices(TOPICS[topic], k=2) + rng.choices(FILLER, k=5)
        rng.shuffle(words)
        rows.append({"body": " ".join(words), "topic": topic})
    return pd.DataFrame(rows)
