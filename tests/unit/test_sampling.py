"""Task-sampling policies: shares, whole counts, and the batches a training stream gives per
task and epoch (one dataset per task)."""

from __future__ import annotations

import numpy as np
import pytest

from polytask.data import SplitArrays
from polytask.data.batches import TrainStream
from polytask.data.sampling import ALL, schedule, shares, whole_counts
from polytask.spec.models import SamplingSpec
from polytask.tasks import IGNORE

SIZES = [300, 100, 50]  # rows of each task's dataset
BATCH = 10


def policy(name: str, **kwargs) -> SamplingSpec:
    return SamplingSpec(policy=name, **kwargs)


def test_shares_by_hand():
    assert shares(policy("proportional"), SIZES, 0, 3) == pytest.approx([300 / 450, 100 / 450, 50 / 450])
    roots = np.sqrt(SIZES)
    assert shares(policy("temperature", alpha=0.5), SIZES, 0, 3) == pytest.approx(roots / roots.sum())
    assert shares(policy("temperature", alpha=0.0), SIZES, 0, 3) == pytest.approx([1 / 3] * 3)
    assert shares(policy("round_robin"), SIZES, 0, 3) == pytest.approx([1 / 3] * 3)


def test_annealed_goes_from_proportional_to_final_alpha():
    # Stickland & Murray: alpha_e = 1 - 0.8 (e - 1) / (E - 1); epochs are 0-based here
    annealed = policy("annealed")
    assert shares(annealed, SIZES, 0, 5) == pytest.approx(shares(policy("proportional"), SIZES, 0, 5))
    middle = np.array(SIZES, dtype=float) ** 0.6  # epoch 3 of 5: alpha 1 - 0.8 * 2/4
    assert shares(annealed, SIZES, 2, 5) == pytest.approx(middle / middle.sum())
    last = np.array(SIZES, dtype=float) ** 0.2
    assert shares(annealed, SIZES, 4, 5) == pytest.approx(last / last.sum())
    assert shares(annealed, SIZES, 0, 1) == pytest.approx(shares(policy("proportional"), SIZES, 0, 1))  # one epoch: alpha 1


def test_whole_counts_by_largest_remainder():
    # 7 x [0.5, 0.3, 0.2] = [3.5, 2.1, 1.4] -> floors [3, 2, 1] leave one step for the largest remainder (0.5)
    assert whole_counts(np.array([0.5, 0.3, 0.2]), 7).tolist() == [4, 2, 1]
    # ties go to the lower index: 4 x [1/3] * 3 = 1.33 each -> [2, 1, 1]
    assert whole_counts(np.full(3, 1 / 3), 4).tolist() == [2, 1, 1]
    rng = np.random.default_rng(0)
    for _ in range(50):
        share = rng.dirichlet(np.ones(4))
        steps = int(rng.integers(1, 100))
        counts = whole_counts(share, steps)
        assert counts.sum() == steps and np.all(np.abs(counts - steps * share) < 1)


def grouped_split() -> SplitArrays:
    """Rows of three tasks' datasets, one after another; each task labelled on its own rows."""
    group = np.repeat(np.arange(3), SIZES)
    labels = {}
    for g, task in enumerate("abc"):
        labels[task] = np.where(group == g, g, IGNORE).astype(np.int64)
    rows = len(group)
    return SplitArrays(labels=labels, categorical=np.arange(rows, dtype=np.int64)[:, None], numeric=np.zeros((rows, 0), np.float32), group=group)


@pytest.mark.parametrize("name", ["proportional", "temperature", "annealed", "round_robin"])
def test_each_epoch_trains_each_task_as_often_as_the_policy_says(name):
    split, steps, epochs = grouped_split(), 20, 3
    sampling = policy(name)
    stream = TrainStream(split, BATCH, seed=7, sampling=sampling, epochs=epochs)
    for epoch in range(epochs):
        seen = np.zeros(3, dtype=int)
        for batch in stream.epoch(epoch, steps):
            present = [g for g, t in enumerate("abc") if (batch[f"labels/{t}"] != IGNORE).any()]
            assert len(present) == 1  # one task's batch per step
            assert len(batch[f"labels/{'abc'[present[0]]}"]) == BATCH
            seen[present[0]] += 1
        if name == "round_robin":  # the tasks in turn, continuing across epochs: 7/7/6, then 6/7/7, ...
            expected = np.bincount((epoch * steps + np.arange(steps)) % 3, minlength=3)
        else:
            expected = whole_counts(shares(sampling, SIZES, epoch, epochs), steps)
        assert seen.tolist() == expected.tolist() == stream.task_batches(epoch, steps).tolist()
    if name == "round_robin":
        assert schedule(sampling, SIZES, 5, 1, epochs, 7).tolist() == [2, 0, 1, 2, 0]  # continues across epochs


def test_policy_all_takes_a_batch_of_every_task_each_step():
    stream = TrainStream(grouped_split(), BATCH, seed=0, sampling=policy("all"))
    batches = list(stream.epoch(0, 4))
    assert len(batches) == 4 and stream.task_batches(0, 4).tolist() == [4, 4, 4]
    for batch in batches:
        assert all(int((batch[f"labels/{t}"] != IGNORE).sum()) == BATCH for t in "abc")
    assert stream.steps_per_epoch == sum(SIZES) // (3 * BATCH)  # the same rows per epoch as the other policies
    assert schedule(policy("all"), SIZES, 3, 0, 1, 0).tolist() == [ALL] * 3


def test_a_task_stream_covers_its_rows_before_repeating_and_resumes_exactly():
    split = grouped_split()
    stream = TrainStream(split, BATCH, seed=3, sampling=policy("round_robin"))
    rows_of_c = [batch["categorical"][:, 0] for batch in stream.epoch(0, 15) if (batch["labels/c"] != IGNORE).any()]
    flat = np.concatenate(rows_of_c)
    assert len(flat) == len(set(flat.tolist())) == 50  # task c's 50 rows, each once, in 5 batches
    assert set(flat.tolist()) == set(range(400, 450))
    # epoch 2 from a fresh stream (a resumed trial) equals epoch 2 of a stream that ran epochs 0-1
    fresh = [b["categorical"] for b in TrainStream(split, BATCH, seed=3, sampling=policy("proportional"), epochs=4).epoch(2, 9)]
    ran = TrainStream(split, BATCH, seed=3, sampling=policy("proportional"), epochs=4)
    for epoch in range(2):
        list(ran.epoch(epoch, 9))
    assert all(np.array_equal(a, b) for a, b in zip(fresh, [b["categorical"] for b in ran.epoch(2, 9)]))
    assert stream.steps_per_epoch == sum(SIZES) // BATCH
