"""Distillation with one dataset per task: a teacher sees its own task's rows only, and its
predictions go back onto the student's rows."""

from __future__ import annotations

import numpy as np

from polytask.data import PreparedData
from polytask.study.distill import onto_student_rows
from polytask.study.single_task import single_task_data, task_rows
from polytask.tasks import TaskInfo
from tests.unit.test_sampling import grouped_split


def test_a_teacher_reads_its_tasks_rows_and_maps_back():
    split = grouped_split()  # tasks a, b, c on rows 0-299, 300-399, 400-449
    tasks = [TaskInfo(t, "classification", ["x", "y", "z"], "accuracy", "max") for t in "abc"]
    data = PreparedData(tasks, {"train": split, "validation": split}, per_task_datasets=True)
    teacher = single_task_data(data, "b")
    reduced = teacher.splits["train"]
    assert [t.name for t in teacher.tasks] == ["b"] and not teacher.per_task_datasets
    assert reduced.group is None and list(reduced.labels) == ["b"] and len(reduced) == 100
    assert reduced.categorical[:, 0].tolist() == list(range(300, 400))  # the inputs of task b's rows, in order
    rows = task_rows(split, 1)
    assert rows.tolist() == list(range(300, 400))
    predictions = np.random.default_rng(0).random((100, 3)).astype(np.float32)  # the teacher's, in its row order
    onto_student = onto_student_rows(split, 1, predictions)
    assert np.array_equal(onto_student[350], predictions[50]) and not onto_student[:300].any()
