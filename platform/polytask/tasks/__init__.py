"""Task types: the head, the masked loss, the predictions and the metrics of each kind of task.

One module per type (``classification``, ``multilabel``, ``regression``, ``token``), each
stating its loss and metrics; ``base`` holds what they share and ``ranking`` the ROC AUC and
average precision helpers. ``TASK_TYPES`` maps a spec's ``type`` to the type's instance.
"""

from __future__ import annotations

from .base import IGNORE, Direction, Metric, TaskInfo, TaskType, score
from .classification import Classification, accuracy, macro_f1
from .multilabel import Multilabel
from .ranking import average_precision, macro_roc_auc, roc_auc
from .regression import Regression
from .token import TokenClassification, check_bio, chunks

TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (Classification(), Multilabel(), Regression(), TokenClassification())}

__all__ = [
    "IGNORE",
    "TASK_TYPES",
    "Classification",
    "Direction",
    "Metric",
    "Multilabel",
    "Regression",
    "TaskInfo",
    "TaskType",
    "TokenClassification",
    "accuracy",
    "average_precision",
    "check_bio",
    "chunks",
    "macro_f1",
    "macro_roc_auc",
    "roc_auc",
    "score",
]
