"""Task-sampling policies: which task's batch each training step takes when every task has its
own dataset (``data.sampling``; the policies are described on SamplingSpec).

With ``n_k`` training rows for task k, a policy gives each task a share ``p_k`` of an epoch's
``S`` steps. The counts are the shares made whole by the largest-remainder method
(``floor(S p_k)``, then one more step for the tasks with the largest remainders, ties to the
lower index), so that an epoch's per-task batch counts *are* the policy, not a random draw
around it; the order of the steps is a permutation seeded by the trial seed and the epoch.
Round-robin takes the tasks in turn, continuing across epochs.

    proportional  p_k = n_k / sum_j n_j
    temperature   p_k = n_k^alpha / sum_j n_j^alpha
    annealed      alpha_e = 1 - (1 - final_alpha) (e - 1) / (E - 1) in epoch e = 1..E
                  (Stickland & Murray, "BERT and PALs", ICML 2019: final_alpha 0.2)
"""

from __future__ import annotations

import numpy as np

from polytask.spec.models import SamplingSpec

ALL = -1  # "every task" in a schedule (policy all)


def shares(sampling: SamplingSpec, sizes: list[int], epoch: int, epochs: int) -> np.ndarray:
    """Each task's share of epoch ``epoch`` (0-based) of ``epochs``: float64 [K], sums to 1."""
    n = np.asarray(sizes, dtype=np.float64)
    policy = sampling.policy
    if policy in ("round_robin", "all"):
        return np.full(len(n), 1.0 / len(n))
    if policy == "proportional":
        alpha = 1.0
    elif policy == "temperature":
        alpha = sampling.alpha
    else:  # annealed
        alpha = 1.0 - (1.0 - sampling.final_alpha) * (epoch / (epochs - 1) if epochs > 1 else 0.0)
    weights = n**alpha
    return weights / weights.sum()


def whole_counts(share: np.ndarray, steps: int) -> np.ndarray:
    """Largest-remainder rounding of ``steps * share`` to integers that sum to ``steps``."""
    exact = steps * share
    counts = np.floor(exact).astype(np.int64)
    remainders = exact - counts
    order = np.lexsort((np.arange(len(share)), -remainders))  # largest remainder first, ties: lower index
    counts[order[: steps - counts.sum()]] += 1
    return counts


def schedule(sampling: SamplingSpec, sizes: list[int], steps: int, epoch: int, epochs: int, seed: int) -> np.ndarray:
    """The task of each step of epoch ``epoch``: int64 [steps] (``ALL`` for policy all)."""
    k = len(sizes)
    if sampling.policy == "all":
        return np.full(steps, ALL, dtype=np.int64)
    if sampling.policy == "round_robin":
        return (epoch * steps + np.arange(steps, dtype=np.int64)) % k
    counts = whole_counts(shares(sampling, sizes, epoch, epochs), steps)
    tasks = np.repeat(np.arange(k, dtype=np.int64), counts)
    return tasks[np.random.default_rng([seed, epoch, 1]).permutation(steps)]
