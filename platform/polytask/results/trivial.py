"""The trivial predictor: what a model that never reads its input scores on each task.

A metric means little on its own: accuracy 0.887 is a result on a balanced task and nothing on a
task whose majority class is 88.7% of the rows. So every study measures, per task and split, the
metrics of the best input-blind answer learnt from the train split's labels alone (each task type
says which: ``TaskType.trivial_predictions``):

* classification: the train split's class priors for every row (the majority class; ROC AUC 0.5);
* multilabel: each class's train prevalence (a class predicted for every row or for none);
* regression: the train mean (MSE, RMSE, R²) and the train median (MAE);
* token classification: "O" for every word (no entity predicted).

The study logs them on its parent run (``trivial/<split>/<task>/<metric>``, and
``trivial/<split>/score``), the comparison shows them as its ``trivial`` row, and a task on which no
strategy is clearly above them is flagged (polytask.results.comparison).
"""

from __future__ import annotations

import torch

from polytask.data import PreparedData
from polytask.tasks import TASK_TYPES, score

PREFIX = "trivial"
SPLITS = {"validation": "val", "test": "test"}  # split name -> metric prefix


def trivial_metrics(data: PreparedData) -> dict[str, float]:
    """``trivial/{val,test}/{task}/{metric}`` for every task and metric, and each split's
    ``trivial/{val,test}/score`` (the main tasks' primary metrics, as ``val/score`` is made)."""
    out: dict[str, float] = {}
    train = data.splits["train"]
    for split, prefix in SPLITS.items():
        if split not in data.splits:
            continue
        primary = {}
        for task in data.tasks:
            task_type = TASK_TYPES[task.type]
            train_labels = torch.from_numpy(train.labels[task.name].copy())
            labels = torch.from_numpy(data.splits[split].labels[task.name].copy())
            values = task_type.trivial_metrics(train_labels, labels, task)
            out.update({f"{PREFIX}/{prefix}/{task.name}/{metric}": value for metric, value in values.items()})
            if not task.auxiliary and task.metric in values:
                primary[task.name] = task_type.unitless(task.metric, values[task.metric], task)
        if primary:
            out[f"{PREFIX}/{prefix}/score"] = score(primary, {t.name: t.direction for t in data.tasks})
    return out
