"""The bad-input catalogue: malformed specs, data and surroundings that `polytask run` must
refuse before anything starts — one precise message naming the field, the value and the fix,
exit code 2, no trial started, nothing written to MLflow.

Each :class:`Case` builds its input from a :class:`Workspace` (the synthetic CSV files and a
scratch folder): a spec as a dict (written as YAML) or as raw text, data files of its own, and
extra command-line arguments. ``expect`` lists what the message must contain — the field, the
bad value and a word of the fix — and ``single`` whether exactly one problem is reported.
:func:`run_case` runs one case through the real CLI (in this process, through typer's runner)
and returns what came out; tests/integration/test_bad_inputs.py asserts on it and
benchmarks/bad_inputs.py writes the table of docs/reliability-inputs.md from it.

Which paths a spec may name, and why (docs/reliability-inputs.md says the same):

* Everything polytask names itself lies inside the output folder: ``runs/<name>``, and under it
  ``tune/<name>-<run>``, ``mlflow.db``, the report. Names that become path components (the
  study's and the candidates' names) are single components — letters, digits, ``_ . -``, never
  ``/`` nor ``..`` (NAME_PATTERN) — so no name can lead a write out of the folder.
* The spec may name other places to write on purpose: ``output``, ``execution.storage`` (a
  cluster's shared folder), ``comparison.baseline_cache`` (a cache shared by studies), the
  SQLite files of ``optuna.storage`` and ``tracking.uri``. A *relative* one of these may not
  climb out of the working directory it is relative to (no ``..``): a spec handed around and
  run from another folder must not write somewhere its reader cannot see from the spec. An
  absolute path is an explicit choice of the spec's author and is allowed (refusing it would
  forbid shared storage on a cluster).
* Paths the spec reads (data files, a local encoder) may be anywhere: reading writes nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tests.support import study_dict

SEARCHED = {"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}


@dataclass
class Workspace:
    """What a case builds from: the synthetic train/validation/test CSVs and a scratch folder."""

    data: dict[str, Path]
    tmp: Path

    def study(self, **overrides) -> dict:
        return study_dict(self.data, **overrides)

    def with_data(self, **frames: pd.DataFrame) -> dict:
        """A study whose splits are the given frames (the synthetic ones for the others)."""
        paths = {}
        for split in ("train", "validation", "test"):
            if split in frames:
                paths[split] = self.tmp / f"{split}.csv"
                frames[split].to_csv(paths[split], index=False)
            else:
                paths[split] = self.data[split]
        return study_dict(paths)

    def frame(self, split: str) -> pd.DataFrame:
        return pd.read_csv(self.data[split])


@dataclass
class Built:
    """A case's input: the spec (a dict written as YAML, raw text, or None: no spec file) and
    arguments after ``polytask run SPEC``; ``output`` defaults to <tmp>/out."""

    spec: dict | str | None
    args: list[str] = field(default_factory=list)
    output: Path | None = None


@dataclass
class Case:
    id: str
    wrong: str  # what is wrong, in words
    build: Callable[[Workspace], Built]
    expect: list[str]  # the field, the value, a word of the fix: all must be in the message
    single: bool = True  # exactly one problem reported
    ray: bool = False  # found only once Ray runs (the cluster's resources)
    setup: Callable[[Workspace], contextlib.AbstractContextManager] | None = None  # surroundings (a full disk)


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _edit(mapping: dict, dotted: str, value: Any) -> dict:
    """``mapping`` with ``a.b[1].c`` set to ``value`` (deleted when value is DELETE)."""
    import re

    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", dotted)]
    node = mapping
    for part in parts[:-1]:
        node = node[part]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return mapping


DELETE = object()


def edited(**changes: Any) -> Callable[[Workspace], Built]:
    """A case that changes fields of the valid study: ``edited(**{"training.epochs": "three"})``."""

    def build(ws: Workspace) -> Built:
        spec = ws.study()
        for dotted, value in changes.items():
            _edit(spec, dotted, value)
        return Built(spec)

    return build


def overrides(**top: Any) -> Callable[[Workspace], Built]:
    return lambda ws: Built(ws.study(**top))


@contextlib.contextmanager
def full_disk(ws: Workspace) -> Iterator[None]:
    """The output folder's disk is full: a 64 KiB tmpfs filled to the brim where this process
    may mount one (root), else the disk's free space reported as none."""
    folder = ws.tmp / "full"
    folder.mkdir(exist_ok=True)
    mounted = os.geteuid() == 0 and shutil.which("mount") and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    try:
        if mounted:
            with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            yield
        else:
            from unittest import mock

            empty = shutil.disk_usage(ws.tmp)._replace(free=0)
            with mock.patch("polytask.ops.preflight.shutil.disk_usage", return_value=empty):
                yield
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)


def _file_under(ws: Workspace) -> Built:
    (ws.tmp / "file.txt").write_text("a file, not a folder\n")
    return Built(ws.study(), output=ws.tmp / "file.txt" / "out")


def _file_itself(ws: Workspace) -> Built:
    (ws.tmp / "results").write_text("a file, not a folder\n")
    return Built(ws.study(), output=ws.tmp / "results")


def _already_a_study(ws: Workspace) -> Built:
    out = ws.tmp / "out"
    out.mkdir()
    (out / "study.json").write_text("{}")
    return Built(ws.study(), output=out)


def _no_labels(ws: Workspace) -> Built:
    frames = {split: ws.frame(split).assign(sentiment=None) for split in ("train", "validation", "test")}
    return Built(ws.with_data(**frames))


def _label_outside(ws: Workspace) -> Built:
    validation = ws.frame("validation")
    validation.loc[3, "sentiment"] = "meh"
    return Built(ws.with_data(validation=validation))


def _declared_classes(ws: Workspace) -> Built:
    train = ws.frame("train")
    train.loc[7, "sentiment"] = "stale"
    spec = ws.with_data(train=train)
    spec["tasks"][1]["classes"] = ["fresh", "rotten"]
    return Built(spec)


def _non_numeric_target(ws: Workspace) -> Built:
    frames = {split: ws.frame(split).assign(score=lambda f: f["review"].str.len().astype(float)) for split in ("train", "validation", "test")}
    frames["train"]["score"] = frames["train"]["score"].astype(object)
    frames["train"].loc[5, "score"] = "lots"
    spec = ws.with_data(**frames)
    spec["tasks"][1] = {"name": "length", "type": "regression", "label_column": "score"}
    return Built(spec)


def _missing_file(ws: Workspace) -> Built:
    spec = ws.study()
    spec["data"]["source"]["train"] = str(ws.tmp / "no-such-train.csv")
    return Built(spec)


def _empty_train(ws: Workspace) -> Built:
    return Built(ws.with_data(train=ws.frame("train").iloc[:0]))


def _unknown_format(ws: Workspace) -> Built:
    path = ws.tmp / "train.txt"
    shutil.copy(ws.data["train"], path)
    spec = ws.study()
    spec["data"]["source"]["train"] = str(path)
    return Built(spec)


def _semicolons(ws: Workspace) -> Built:
    spec = ws.study()
    path = ws.tmp / "train.csv"
    ws.frame("train").to_csv(path, sep=";", index=False)
    spec["data"]["source"]["train"] = str(path)
    return Built(spec)


def _numbers_as_classes(ws: Workspace) -> Built:
    """A 0-999 score as the label of a classification task; validation and test hold values
    the train split lacks (the message once listed all of them, twice)."""
    train = pd.concat([ws.frame("train")] * 3, ignore_index=True).assign(decile=lambda f: f.index % 1000)
    frames = {"train": train, **{s: ws.frame(s).assign(decile=lambda f: f.index + 1000) for s in ("validation", "test")}}
    spec = ws.with_data(**frames)
    spec["tasks"][1] = {"name": "decile", "label_column": "decile"}
    return Built(spec)


def _tabular(ws: Workspace, **frames: pd.DataFrame) -> dict:
    """The study on a tabular encoder: the review's length (numeric) and first word (categorical)."""
    features = {s: frames.get(s, ws.frame(s)) for s in ("train", "validation", "test")}
    for frame in features.values():
        frame["length"] = frame["review"].str.len().astype(float)
        frame["first_word"] = frame["review"].str.split().str[0]
    spec = ws.with_data(**features)
    spec["data"].update(categorical_columns=["first_word"], numeric_columns=["length"])
    spec["encoder"] = {"kind": "tabular", "hidden": [8]}
    return spec


def _nan_feature(ws: Workspace) -> Built:
    train = ws.frame("train")
    train.loc[5, "review"] = None  # its length: missing
    spec = _tabular(ws, train=train)
    return Built(spec)


def _repeated_header(ws: Workspace) -> Built:
    """A label column repeated in the file's header: pandas reads the copy as 'sentiment.1'."""
    spec = _tabular(ws)
    for split in ("train", "validation", "test"):
        path = Path(spec["data"]["source"][split])
        frame = pd.read_csv(path).assign(sentiment_copy=lambda f: f["sentiment"])
        path.write_text(frame.to_csv(index=False).replace("sentiment_copy", "sentiment", 1))
    spec["data"]["categorical_columns"].append("sentiment.1")
    return Built(spec)


def _trailing_dots(ws: Workspace) -> Built:
    test = ws.frame("test")
    test["sentiment"] = test["sentiment"] + "."
    return Built(ws.with_data(test=test))


def _tracking_http(ws: Workspace) -> Built:
    return Built(ws.study(), args=["--tracking-uri", f"http://127.0.0.1:{closed_port()}"])


def _address(ws: Workspace) -> Built:
    return Built(ws.study(), args=["--address", f"127.0.0.1:{closed_port()}"])


def _full(ws: Workspace) -> Built:
    return Built(ws.study(), output=ws.tmp / "full" / "out")


CASES: list[Case] = [
    # ------------------------------------------------------------------ the spec file itself
    Case("yaml-syntax", "a YAML syntax error (an unclosed list)", lambda ws: Built("name: x\ntasks: [a, b\nencoder: {}\n"), ["line 3, column", "not valid YAML", "fix the syntax"]),
    Case("not-a-mapping", "the spec is a YAML list, not a mapping", lambda ws: Built("- name: x\n- tasks: []\n"), ["SPEC", "a list", "not a mapping", "name: ..."]),
    Case("empty-file", "the spec file is empty", lambda ws: Built(""), ["SPEC", "an empty file", "name: ..."]),
    Case("no-spec-file", "the spec file does not exist", lambda ws: Built(None), ["SPEC", "no such spec file", "missing.yaml", "studies/quickstart.yaml"]),
    # ------------------------------------------------------------------ fields: keys and types
    Case("unknown-top-key", "an unknown top-level key (seed for seeds)", lambda ws: Built({**ws.study(), "seed": [1]}), ["seed:", "unknown field 'seed'", "Did you mean 'seeds'?"]),
    Case("unknown-nested-key", "an unknown key inside training", edited(**{"training.learning_rat": 0.1}), ["training.learning_rat", "'learning_rat'", "Did you mean 'learning_rate'?"]),
    Case("missing-field", "a required field left out (a task's label_column)", edited(**{"tasks[0].label_column": DELETE}), ["tasks[0].label_column", "required field is missing", "add it"]),
    Case("epochs-a-string", "a string where a number goes (epochs: three)", edited(**{"training.epochs": "three"}), ["training.epochs", "'three' is a string", "takes an integer"]),
    Case("sharing-a-string", "a string where a mapping goes (sharing: mmoe)", overrides(sharing="mmoe"), ["sharing:", "'mmoe' is a string", "write `sharing: {name: mmoe}`"]),
    Case("seeds-a-number", "a number where a list goes (seeds: 3)", overrides(seeds=3), ["seeds:", "3 is an integer", "write `seeds: [3]`"]),
    Case("negative-learning-rate", "a negative learning rate", edited(**{"training.learning_rate": -0.001}), ["training.learning_rate", "-0.001", "greater than 0"]),
    Case("zero-batch-size", "batch size 0", edited(**{"training.batch_size": 0}), ["training.batch_size", "got 0", "greater than or equal to 1"]),
    Case("max-length-too-small", "an encoder max_length below the minimum", edited(**{"encoder.max_length": 4}), ["encoder.max_length", "got 4", "greater than or equal to 8"]),
    Case("no-tasks", "an empty task list", overrides(tasks=[]), ["tasks:", "at least 1 item", "got []"]),
    Case("no-candidates", "an empty candidate list", overrides(candidates=[]), ["candidates:", "at least 1 item", "got []"]),
    Case("unknown-source-kind", "a data source kind that does not exist", edited(**{"data.source.kind": "s3"}), ["data.source.kind", "'s3'", "'builtin', 'files', 'hub'"]),
    Case("heads-do-not-divide", "attention heads that do not divide the hidden size", edited(**{"encoder.heads": 3}), ["encoder.heads", "3 does not divide hidden_size 32", "choose heads"]),
    # ------------------------------------------------------------------ strategies and their hyperparameters
    Case("unknown-weighting", "an unknown weighting strategy (a typo)", overrides(candidates=[{"weighting": "pcgard"}]), ["candidates[0].weighting", "'pcgard'", "Did you mean 'pcgrad'?"]),
    Case("unknown-sharing", "an unknown sharing architecture (a typo)", overrides(sharing={"name": "mmeo"}), ["sharing.name", "'mmeo'", "Did you mean 'mmoe'?"]),
    Case("weighting-is-a-sharing", "a sharing architecture given as the weighting (weighting: mmoe)", overrides(candidates=[{"weighting": "mmoe"}]), ["candidates[0].weighting", "mmoe is a sharing strategy", "write `sharing: {name: mmoe}`"]),
    Case("sharing-is-a-weighting", "a weighting given as the sharing (sharing: {name: pcgrad})", overrides(sharing={"name": "pcgrad"}), ["sharing.name", "pcgrad is a weighting strategy", "write `weighting: pcgrad`"]),
    Case("unknown-hyperparameter", "a hyperparameter the strategy does not have", overrides(candidates=[{"weighting": "pcgrad", "params": {"grad_spce": "representation"}}]), ["candidates[0].params.grad_spce", "'grad_spce'", "Did you mean 'grad_space'?"]),
    Case("hyperparameter-type", "a hyperparameter of the wrong type", overrides(candidates=[{"weighting": "uncertainty", "params": {"lr": "fast"}}]), ["candidates[0].params.lr", "'fast'", "not a valid float"]),
    Case("hyperparameter-value", "a hyperparameter value the method rejects (CAGrad c < 0)", overrides(candidates=[{"weighting": "cagrad", "params": {"c": -1}}]), ["candidates[0].params", "-1", "c"]),
    Case("unknown-sharing-hyperparameter", "a sharing hyperparameter that does not exist", overrides(sharing={"name": "hard", "params": {"hiden": [8]}}), ["sharing.params.hiden", "'hiden'", "Did you mean 'hidden'?"]),
    Case("search-wrong-weighting", "a weight search on a strategy other than scalarization", overrides(candidates=[{"weighting": "equal", "search": {"trials": 2}}]), ["candidates[0].search", "'equal'", "set weighting: scalarization"]),
    Case("search-low-above-high", "a search range with low above high", overrides(candidates=[{**SEARCHED, "search": {"trials": 2, "low": 5.0, "high": 1.0}}]), ["candidates[0].search.low", "5.0", "below high"]),
    # ------------------------------------------------------------------ task weights
    Case("weight-count", "three task weights for two tasks", overrides(candidates=[{"weighting": "scalarization", "params": {"weights": [1, 2, 3]}}]), ["candidates[0].params.weights", "3 value(s) for 2 tasks", "one value per task"]),
    Case("negative-weight", "a negative task weight", overrides(candidates=[{"weighting": "scalarization", "params": {"weights": [-1, 2]}}]), ["candidates[0].params.weights", "-1.0", "non-negative"]),
    Case("all-zero-weights", "every task weight zero", overrides(candidates=[{"weighting": "scalarization", "params": {"weights": [0, 0]}}]), ["candidates[0].params.weights", "[0.0, 0.0]", "at least one task must count"]),
    Case("weights-unknown-task", "task weights naming a task that does not exist", overrides(candidates=[{"weighting": "scalarization", "params": {"weights": {"subjectivity": 1, "sentimnt": 2}}}]), ["candidates[0].params.weights", "'sentimnt'", "one value for each of"]),
    # ------------------------------------------------------------------ names
    Case("duplicate-task", "two tasks with one name", overrides(tasks=[{"name": "subjectivity", "label_column": "kind"}, {"name": "subjectivity", "label_column": "sentiment"}]), ["tasks[1].name", "'subjectivity'", "must be unique"]),
    Case("duplicate-candidate", "two candidates with one name", overrides(candidates=[{"weighting": "equal"}, {"weighting": "equal"}]), ["candidates[1].name", "'equal'", "must be unique"]),
    Case("duplicate-seed", "a seed listed twice", overrides(seeds=[0, 0]), ["seeds[1]", "0 repeats seeds[0]", "must be unique"]),
    Case("study-name-escapes", "a study name that is a path (../etc)", overrides(name="../etc"), ["name:", "'../etc'", "folder name", "rename it"]),
    Case("candidate-name-slash", "a candidate name with a slash", overrides(candidates=[{"name": "a/b", "weighting": "equal"}]), ["candidates[0].name", "'a/b'", "rename it"]),
    Case("task-name-invalid", "a task name with a space", edited(**{"tasks[0].name": "my task"}), ["tasks[0].name", "'my task'", "rename it"]),
    # ------------------------------------------------------------------ metrics and direction
    Case("unknown-task-type", "an unknown task type (a typo)", edited(**{"tasks[0].type": "classifcation"}), ["tasks[0].type", "'classifcation'", "Did you mean 'classification'?"]),
    Case("unknown-metric", "a metric the task type does not have", edited(**{"tasks[0].metric": "rmse"}), ["tasks[0].metric", "'rmse'", "Allowed:"]),
    Case("direction-typo", "a direction that is neither max nor min", edited(**{"tasks[0].direction": "maximise"}), ["tasks[0].direction", "'maximise'", "'max' or 'min'"]),
    Case("direction-contradicts-metric", "direction min for accuracy", edited(**{"tasks[1].direction": "min"}), ["tasks[1].direction", "'min'", "set it to 'max'"]),
    # ------------------------------------------------------------------ running
    Case("asha-grace-period", "an ASHA grace period as long as training", overrides(execution={"scheduler": {"kind": "asha", "grace_period": 2}}), ["execution.scheduler.grace_period", "2", "set it below the number of epochs"]),
    Case("fractional-gpu-above-one", "1.5 GPUs per trial", overrides(resources={"gpu": 1.5}), ["resources.gpu", "1.5", "use e.g. 0.5, 1 or 2"]),
    Case("optuna-storage-not-rdb", "an Optuna storage that is not a database URL", overrides(candidates=[SEARCHED], optuna={"storage": "redis://localhost"}), ["optuna.storage", "'redis://localhost'", "sqlite:///optuna.db"]),
    Case("too-many-cpus", "more CPUs per trial than the cluster has", overrides(resources={"cpu": 1000}), ["resources.cpu", "1000 CPU(s) per trial", "lower it"], ray=True),
    Case("gpu-without-gpus", "a GPU per trial on a machine without one", overrides(resources={"gpu": 1}), ["resources.gpu", "1 GPU(s) per trial", "set resources.gpu: 0"], ray=True),
    Case("unreachable-address", "a Ray address nothing listens on", _address, ["--address", "127.0.0.1:", "ray start --head"]),
    Case("unreachable-tracking-server", "an MLflow tracking URI nothing listens on", _tracking_http, ["tracking.uri", "http://127.0.0.1:", "polytask server"]),
    Case("tracking-sqlite-folder-missing", "a SQLite tracking store in a folder that does not exist", lambda ws: Built(ws.study(tracking={"uri": f"sqlite:///{ws.tmp}/no/such/folder/mlflow.db"})), ["tracking.uri", "no/such/folder", "create it"]),
    # ------------------------------------------------------------------ paths that would leave their folder
    Case("output-escapes", "a relative output path that climbs out with ..", overrides(output="../../etc/polytask"), ["output:", "'../../etc/polytask'", "without '..'"]),
    Case("storage-escapes", "a relative Tune storage path that climbs out with ..", overrides(execution={"storage": "../tune"}), ["execution.storage", "'../tune'", "without '..'"]),
    Case("baseline-cache-escapes", "a relative baseline cache that climbs out with ..", overrides(comparison={"single_task_baselines": True, "baseline_cache": "runs/../../cache"}), ["comparison.baseline_cache", "'runs/../../cache'", "without '..'"]),
    Case("optuna-sqlite-escapes", "an Optuna SQLite file that climbs out with ..", overrides(candidates=[SEARCHED], optuna={"storage": "sqlite:///../optuna.db"}), ["optuna.storage", "'../optuna.db'", "without '..'"]),
    # ------------------------------------------------------------------ the output folder
    Case("output-under-a-file", "an output folder whose parent is a regular file", _file_under, ["output:", "file.txt/out", "a file, not a folder", "--output"]),
    Case("output-is-a-file", "an output path that is a regular file", _file_itself, ["output:", "/results is a file", "--output"]),
    Case("output-holds-a-study", "an output folder that already holds a study", _already_a_study, ["output:", "already holds the results", "--overwrite"]),
    Case("output-disk-full", "the output folder's disk is full", _full, ["output:", "full/out", "full disk", "free some space"], setup=full_disk),
    # ------------------------------------------------------------------ the data
    Case("missing-train-file", "a train file that does not exist", _missing_file, ["data.source.train", "no-such-train.csv", "give a path"]),
    Case("unknown-file-format", "a data file whose format cannot be told", _unknown_format, ["data.source.train", "train.txt", "set data.source.format"]),
    Case("empty-train-split", "a train file with a header and no rows", _empty_train, ["train split", "has no rows", "check the source"]),
    Case("missing-label-column", "a label column the data lacks", edited(**{"tasks[1].label_column": "sentimnet"}), ["tasks[1].label_column", "'sentimnet'", "set it to the column"]),
    Case("missing-text-column", "a text column the data lacks", edited(**{"data.text_column": "reviw"}), ["data.text_column", "'reviw'", "set it to the column"]),
    Case("column-name-case", "a column name spelled in another case (Review for review)", edited(**{"data.text_column": "Review"}), ["data.text_column", "'Review'", "did you mean 'review'?"]),
    Case("semicolon-file", "a file separated by ';' read with the default ','", _semicolons, ["data.source.delimiter", "train.csv", "separated by ';'", "set data.source.delimiter: ';'"]),
    Case("numbers-as-classes", "a 0-999 number column as a classification label", _numbers_as_classes, ["tasks[1].type", "1,000 distinct numbers (0 … 999)", "tasks[1].type: regression", "tasks[1].classes"]),
    Case("nan-numeric-feature", "a missing value in a numeric feature column", _nan_feature, ["column 'length', row 5", "1 row has no value", "data.missing: impute", "data.missing: drop"]),
    Case("repeated-header", "a label column repeated in the header, read as a feature", _repeated_header, ["data.categorical_columns[1]", "'sentiment.1'", "second copy of 'sentiment'", "remove it from data.categorical_columns"]),
    Case("trailing-dot-labels", "test labels spelled with a trailing '.' ('fresh.')", _trailing_dots, ["files test.csv", "with a trailing '.'", "tasks[1].label_map: {"]),
    Case("unknown-column-rename", "a column mapping from a column the data lacks", edited(**{"data.source.columns": {"revew": "text"}}), ["data.source.columns", "'revew'", "fix the mapping"]),
    Case("label-outside-train", "a validation label the train split never has", _label_outside, ["column 'sentiment', row 3", "'meh'", "tasks[1].classes"]),
    Case("label-outside-classes", "a label outside the declared classes", _declared_classes, ["column 'sentiment', row 7", "'stale'", "declared in tasks[1].classes"]),
    Case("task-without-labels", "a task with no labelled row", _no_labels, ["column 'sentiment'", "0 distinct label(s)", "label more rows"]),
    Case("non-numeric-target", "a regression target that is not a number", _non_numeric_target, ["column 'score', row 5", "'lots'", "fix the rows"]),
]


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    output: Path

    @property
    def message(self) -> str:
        """The error as one line (the terminal wraps long lines), from ``error:`` on (a local Ray
        logs a warning of its own before it)."""
        text = " ".join(self.stderr.split())
        return text[text.find("error:") :] if "error:" in text else text

    @property
    def problems(self) -> int:
        head = self.message.split("error:", 1)[-1].strip().split(" ", 1)[0]
        return int(head) if head.isdigit() else 0

    @property
    def trials_started(self) -> int:
        tune = self.output / "tune"
        return sum(1 for _ in tune.rglob("result.json")) if tune.exists() else 0

    @property
    def mlflow_runs(self) -> int:
        """Runs in the output folder's MLflow store (the default store; none when absent)."""
        db = self.output / "mlflow.db"
        if not db.exists():
            return 0
        import sqlite3

        with contextlib.closing(sqlite3.connect(db)) as con:
            return con.execute("select count(*) from runs").fetchone()[0]


def run_case(case: Case, ws: Workspace) -> Outcome:
    """``polytask run SPEC --output OUT [args]`` through the real CLI: in this process, or in a
process of its own for the cases that start Ray."""
    from typer.testing import CliRunner

    from polytask.cli import app

    built = case.build(ws)
    spec_path = ws.tmp / ("missing.yaml" if built.spec is None else "study.yaml")
    if isinstance(built.spec, str):
        spec_path.write_text(built.spec)
    elif built.spec is not None:
        spec_path.write_text(yaml.safe_dump(built.spec, sort_keys=False))
    output = built.output or ws.tmp / "out"
    command = ["run", str(spec_path), "--output", str(output), *built.args]
    if case.ray:  # Ray's own logging outlives the runner's captured streams: a process of its own
        import sys

        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
        done = subprocess.run([sys.executable, "-m", "polytask", *command], capture_output=True, text=True, timeout=300, env=env)
        return Outcome(done.returncode, done.stdout, done.stderr, output)
    with case.setup(ws) if case.setup else contextlib.nullcontext():
        result = CliRunner().invoke(app, command, env={"RAY_ADDRESS": None, "MLFLOW_TRACKING_URI": None})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        stderr += "".join(traceback.format_exception(result.exception))
    return Outcome(result.exit_code, result.stdout, stderr, output)
