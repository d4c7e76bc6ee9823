"""Checks across a spec's fields, once each field has its type: unique names, metrics that fit
their task, strategy hyperparameters (names, types, task weights) that build a strategy."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from polytask.errors import Problem, did_you_mean, listing, unknown_name
from polytask.ops.credentials import mask_credentials
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.weighting import WEIGHTINGS, GradientAggregator, type_name
from polytask.tasks import TASK_TYPES

from .defaults import DEFAULTS
from .models import TEXT_ENCODERS, CandidateSpec, CnnEncoderSpec, FilesSource, RandomEncoder, SharingSpec, StudySpec, TabularEncoderSpec, VitEncoderSpec


def check_spec(spec: StudySpec) -> list[Problem]:
    """Checks across fields, after each field has its type."""
    problems: list[Problem] = []
    problems += _duplicates([t.name for t in spec.tasks], "tasks", "name")
    problems += _duplicates([c.label for c in spec.candidates], "candidates", "name")
    problems += _duplicates(spec.seeds, "seeds", None)
    for i, task in enumerate(spec.tasks):
        problems += _check_task(spec, i)
    if not spec.main_tasks:
        problems.append(Problem("tasks", "every task is auxiliary; mark at least one task auxiliary: false (the study needs something to compare on)"))
    problems += _check_sharing(spec.sharing, "sharing", spec.task_names)
    for i, candidate in enumerate(spec.candidates):
        problems += _check_candidate(candidate, f"candidates[{i}]", spec.task_names)
        if candidate.sharing is not None:
            problems += _check_sharing(candidate.sharing, f"candidates[{i}].sharing", spec.task_names)
        problems += _check_pairing(candidate, candidate.sharing or spec.sharing, f"candidates[{i}]", spec.encoder)
    enc = spec.encoder
    if isinstance(enc, RandomEncoder):
        if enc.hidden_size % enc.heads:
            problems.append(Problem("encoder.heads", f"{enc.heads} does not divide hidden_size {enc.hidden_size}; choose heads that divide it (e.g. 2 or 4) or change hidden_size"))
        if enc.trainable_layers is not None and enc.trainable_layers > enc.layers:
            problems.append(Problem("encoder.trainable_layers", f"{enc.trainable_layers} is more than the encoder's {enc.layers} layers"))
    problems += _check_feature_columns(spec)
    problems += _check_sources(spec)
    problems += _check_file_options(spec)
    problems += _check_scheduler(spec)
    problems += _check_optuna(spec)
    problems += _check_comparison(spec)
    problems += _check_write_paths(spec)
    return problems


def write_paths(spec: StudySpec) -> dict[str, str]:
    """The local paths a spec tells polytask to write to, by field (URIs other than sqlite: and
    file: name no local path)."""
    paths = {"output": spec.output, "execution.storage": spec.execution.storage, "comparison.baseline_cache": spec.comparison.baseline_cache}
    for field, uri in (("optuna.storage", spec.optuna.storage), ("tracking.uri", spec.tracking.uri)):
        if uri and uri.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "file"):
            path = uri.split(":", 1)[1].removeprefix("//")
            paths[field] = path[1:] if path.startswith("/") and uri.startswith("sqlite") else path  # sqlite:///rel.db, sqlite:////abs.db
    return {field: path for field, path in paths.items() if path and "://" not in path}


def _check_write_paths(spec: StudySpec) -> list[Problem]:
    """A relative write path stays below the folder it is relative to (the working directory):
    no '..'. Everything polytask names itself lies inside the output folder (names are single
    path components, see NAME_PATTERN); an absolute path is the spec author's explicit choice
    (a cluster's shared folder, a cache shared by studies)."""
    problems = []
    for field, path in write_paths(spec).items():
        parts = path.replace("\\", "/").split("/")
        if not path.startswith(("/", "~")) and ".." in parts:
            problems.append(Problem(field, f"{path!r} climbs out of the working directory with '..'; a relative path in a spec must stay below it: give a path without '..', or an absolute path"))
    return problems


RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


def _check_scheduler(spec: StudySpec) -> list[Problem]:
    # epochs left out: the encoder kind's default, which a small dataset only raises (polytask.spec.defaults)
    scheduler, epochs = spec.execution.scheduler, spec.training.epochs or DEFAULTS[spec.encoder.kind].epochs
    if scheduler.kind == "asha" and scheduler.grace_period >= epochs:
        return [Problem("execution.scheduler.grace_period", f"{scheduler.grace_period} leaves ASHA nothing to stop with training.epochs {epochs}; set it below the number of epochs")]
    if scheduler.kind != "pbt":
        return []
    problems = []
    searched = [c for c in spec.candidates if c.weighting == "scalarization" and c.search is not None]
    if len(spec.candidates) != 1 or not searched:
        labels = ", ".join(c.label for c in spec.candidates)
        problems.append(Problem("execution.scheduler.kind", f"pbt evolves the task weights of one population, so the study needs exactly one candidate, `weighting: scalarization` with `search: {{trials: N}}` (N members); found: {labels}. Compare other candidates in a study of their own"))
    elif searched[0].search.trials < 2:
        problems.append(Problem("candidates[0].search.trials", f"{searched[0].search.trials} is not a population; pbt needs at least 2 members (4 or more to exploit a quantile)"))
    if scheduler.perturbation_interval >= epochs:
        problems.append(Problem("execution.scheduler.perturbation_interval", f"{scheduler.perturbation_interval} epochs leaves no perturbation within training.epochs {epochs}; set it below the number of epochs"))
    if spec.distills:
        problems.append(Problem("execution.scheduler.kind", "pbt does not combine with distill (a member's weights change while its teacher's targets do not); drop one of them"))
    return problems


def _check_optuna(spec: StudySpec) -> list[Problem]:
    storage = spec.optuna.storage
    if storage is None:
        return []
    if storage.split(":", 1)[0].split("+", 1)[0] not in RDB_SCHEMES:
        return [Problem("optuna.storage", f"{mask_credentials(storage)!r} is not an RDB URL; use e.g. sqlite:///optuna.db or postgresql://user@host/db, or leave it out to keep the search in memory")]
    if spec.execution.scheduler.kind == "pbt":
        return [Problem("optuna.storage", "is unused with execution.scheduler.kind pbt: the population's first weights are drawn at random and then evolved by PBT, not by Optuna; remove it")]
    if not any(spec.tuned(c.label) for c in spec.candidates):
        return [Problem("optuna.storage", "is set but nothing is searched (no candidate has `search:` and comparison.tuning is unset); remove it or add a searched candidate")]
    return []


def _check_comparison(spec: StudySpec) -> list[Problem]:
    comparison, problems = spec.comparison, []
    tuning = comparison.tuning
    if tuning is not None:
        low, high = tuning.learning_rate
        if low >= high:
            problems.append(Problem("comparison.tuning.learning_rate", f"[{low}, {high}] is not a range; give [low, high] with low < high, e.g. [1e-5, 1e-3]"))
        if spec.execution.scheduler.kind == "pbt":
            problems.append(Problem("comparison.tuning", "does not combine with execution.scheduler.kind pbt (PBT evolves its own population); remove one of them"))
        for i, candidate in enumerate(spec.candidates):
            if candidate.search is not None and candidate.search.trials != tuning.trials:
                problems.append(Problem(f"candidates[{i}].search.trials", f"{candidate.search.trials} differs from comparison.tuning.trials {tuning.trials}; an equal tuning budget gives every candidate the same number of trials: set them equal"))
    if comparison.selection == "last_epoch" and spec.training.early_stopping.patience is not None:
        problems.append(Problem("comparison.selection", "last_epoch does not combine with training.early_stopping (which keeps the best epoch); use selection: best_epoch or remove early_stopping.patience"))
    if comparison.single_task_baselines and len(spec.main_tasks) < 2:
        problems.append(Problem("comparison.single_task_baselines", "needs two or more main tasks (with one, the study is its own single-task baseline); set it to false"))
    if comparison.baseline_cache is not None and not comparison.single_task_baselines:
        problems.append(Problem("comparison.baseline_cache", "is set but comparison.single_task_baselines is false; set single_task_baselines: true or remove it"))
    return problems


def _check_task(spec: StudySpec, i: int) -> list[Problem]:
    """The metric fits the task type; labels and inputs fit the type and the encoder."""
    task, task_type = spec.tasks[i], TASK_TYPES[spec.tasks[i].type]
    metric = task.primary_metric
    if metric not in task_type.metrics:
        return [Problem(f"tasks[{i}].metric", unknown_name(f"{task.type} metric", metric, task_type.metrics))]
    problems = []
    if task.direction and task.direction != task_type.metrics[metric].direction:
        natural = task_type.metrics[metric].direction
        problems.append(Problem(
            f"tasks[{i}].direction",
            f"'{task.direction}' contradicts {metric}, which is better when {'higher' if natural == 'max' else 'lower'}; "
            f"remove direction or set it to '{natural}'",
        ))
    if task.type == "regression" and task.classes is not None:
        problems.append(Problem(f"tasks[{i}].classes", "a regression task predicts a number and has no classes; remove classes"))
    if task.label_map and task.type not in ("classification", "multilabel"):
        problems.append(Problem(f"tasks[{i}].label_map", f"renames class labels, and a {task.type} task's labels are {'numbers' if task.type == 'regression' else 'tags'}; remove label_map"))
    if task_type.token_level and not isinstance(spec.encoder, TEXT_ENCODERS):
        problems.append(Problem(f"tasks[{i}].type", f"token_classification tags the words of a text, but encoder kind '{spec.encoder.kind}' reads no text; use a text encoder (kind: pretrained or random)"))
    if task.type == "token_classification" and task.classes is not None:
        from polytask.tasks import check_bio

        try:
            check_bio(task.classes)
        except ValueError as exc:
            problems.append(Problem(f"tasks[{i}].classes", str(exc)))
    if task.type != "classification" and any(c.distill for c in spec.candidates):
        problems.append(Problem(f"tasks[{i}].type", f"distillation (candidates[].distill) learns from a teacher's class probabilities, which only classification tasks have, and {task.name} is {task.type}; remove distill from the candidates"))
    return problems


def _check_file_options(spec: StudySpec) -> list[Problem]:
    """The CSV options of file sources: column_names go with header: false, and CSV options
    with CSV files only."""
    sources = [("data.source", spec.data.source)] + [(f"tasks[{i}].source", t.source) for i, t in enumerate(spec.tasks)]
    problems = []
    for where, source in sources:
        if not isinstance(source, FilesSource):
            continue
        if source.header and source.column_names is not None:
            problems.append(Problem(f"{where}.column_names", f"names the columns of a file without a header row, but {where}.header is true; set {where}.header: false, or remove column_names to read the names from the first line"))
        elif not source.header and not source.column_names:
            problems.append(Problem(f"{where}.header", f"false needs {where}.column_names: [name of the first column, ...]; list one name per field of a line"))
        if source.column_names:
            repeated = sorted({c for c in source.column_names if source.column_names.count(c) > 1})
            if repeated:
                problems.append(Problem(f"{where}.column_names", f"repeats {listing(repeated)}; give each column its own name"))
        if source.delimiter is not None and len(source.delimiter) > 1 and source.delimiter != "\\t":
            problems.append(Problem(f"{where}.delimiter", f"{source.delimiter!r} is more than one character; give the one character between fields, such as ';' or '|' (a tab: \"\\t\")"))
        fmt = source.format_of(source.train)
        if fmt is not None and fmt != "csv":
            given = [name for name, value in (("delimiter", source.delimiter), ("header", None if source.header else False), ("column_names", source.column_names), ("comment", source.comment)) if value is not None]
            problems += [Problem(f"{where}.{name}", f"is an option of CSV files, and {Path(source.train).name} is read as {fmt}; remove it (na_values and strip_spaces apply to every format)") for name in given]
    return problems


def _check_sources(spec: StudySpec) -> list[Problem]:
    """One dataset for all tasks (data.source), or one per task (tasks[i].source) joined by a
    sampling policy; a policy that trains one task per step needs a weighting that copes."""
    own = [i for i, t in enumerate(spec.tasks) if t.source is not None]
    if spec.data.source is not None:
        problems = [Problem(f"tasks[{i}].source", "data.source already gives every task its data; remove tasks[].source, or remove data.source and give every task its own source") for i in own]
        problems += [Problem(f"tasks[{i}].text_column", "a task's own text_column goes with its own source; remove it (data.text_column applies)") for i, t in enumerate(spec.tasks) if t.text_column is not None]
        if spec.data.sampling is not None:
            problems.append(Problem("data.sampling", "chooses between the tasks' own datasets, but data.source gives one dataset to all tasks; remove data.sampling"))
        problems += [Problem(f"candidates[{i}].sampling", "chooses between the tasks' own datasets, but data.source gives one dataset to all tasks; remove it") for i, c in enumerate(spec.candidates) if c.sampling is not None]
        return problems
    lacking = [i for i in range(len(spec.tasks)) if i not in own]
    if lacking:
        return [Problem(f"tasks[{i}].source", "has no source, and data.source is not set; give every task its own source, or set data.source for all of them") for i in lacking]
    problems = []
    for i, candidate in enumerate(spec.candidates):
        policy = spec.sampling_of(candidate.label).policy
        if not WEIGHTINGS[candidate.weighting].partial_steps and policy != "all":
            fine = ", ".join(sorted(n for n, c in WEIGHTINGS.items() if c.partial_steps))
            problems.append(Problem(
                f"candidates[{i}].weighting",
                f"'{candidate.weighting}' needs every task's loss in every step, but sampling policy '{policy}' trains one task's batch per step; "
                f"use a weighting that works with one task per step ({fine}) or sampling policy all (candidates[{i}].sampling or data.sampling)",
            ))
    return problems


def _check_feature_columns(spec: StudySpec) -> list[Problem]:
    """A tabular encoder reads at least one feature column, each once and never a label; other
    encoders read none."""
    data = spec.data
    if not isinstance(spec.encoder, TabularEncoderSpec):
        listed = [(f, getattr(data, f)) for f in ("categorical_columns", "numeric_columns") if getattr(data, f)]
        reads = "data.text_column" if isinstance(spec.encoder, TEXT_ENCODERS) else "data.image_column"
        return [
            Problem(f"data.{field}", f"{columns} are read only by a tabular encoder, and encoder kind '{spec.encoder.kind}' reads {reads}; remove data.{field} or set encoder.kind: tabular")
            for field, columns in listed
        ]
    if not data.categorical_columns and not data.numeric_columns:
        return [Problem("data.categorical_columns", "a tabular encoder needs at least one feature column; list the columns it reads in data.categorical_columns and/or data.numeric_columns")]
    problems = _duplicates(data.categorical_columns, "data.categorical_columns", None)
    problems += _duplicates(data.numeric_columns, "data.numeric_columns", None)
    for i, column in enumerate(data.numeric_columns):
        if column in data.categorical_columns:
            j = data.categorical_columns.index(column)
            problems.append(Problem(f"data.numeric_columns[{i}]", f"'{column}' is also data.categorical_columns[{j}]; a column is either categorical or numeric, remove it from one list"))
    features: dict[str, str] = {}  # column -> where it is first listed
    for field in ("categorical_columns", "numeric_columns"):
        for i, column in enumerate(getattr(data, field)):
            features.setdefault(column, f"data.{field}[{i}]")
    for i, task in enumerate(spec.tasks):
        if task.label_column in features:
            problems.append(Problem(features[task.label_column], f"'{task.label_column}' is the label column of tasks[{i}] ({task.name}); a feature must not be a label, remove it from the feature columns"))
    return problems


class ParamError(ValueError):
    """A bad strategy hyperparameter; ``field`` is its path inside the candidate."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def weighting_kwargs(candidate: CandidateSpec, task_names: list[str]) -> dict[str, Any]:
    """The keyword arguments that build ``candidate``'s strategy for these tasks.

    Task weights may be written as a mapping task -> weight (any order) or a list in task order;
    the strategy receives the list. Raises :class:`ParamError` with a user-facing message.
    """
    cls = WEIGHTINGS[candidate.weighting]
    kwargs = _typed_kwargs(cls, candidate.weighting, candidate.params, task_names)
    if candidate.search is not None:
        kwargs["weights"] = [1.0] * len(task_names)  # placeholder; each trial's sample replaces it
    try:
        cls(len(task_names), **kwargs)
    except ValueError as exc:
        raise ParamError("params", str(exc)) from None
    return kwargs


def sharing_kwargs(sharing: SharingSpec, task_names: list[str]) -> dict[str, Any]:
    """The keyword arguments that build ``sharing``'s architecture for these tasks (per-task
    values as lists in task order). Raises :class:`ParamError` with a user-facing message."""
    cls = SHARINGS[sharing.name]
    kwargs = _typed_kwargs(cls, sharing.name, sharing.params, task_names)
    try:
        cls.check_params(task_names, **kwargs)
    except ValueError as exc:
        raise ParamError("params", str(exc)) from None
    return kwargs


def _typed_kwargs(cls: type, strategy: str, params: dict[str, Any], task_names: list[str]) -> dict[str, Any]:
    """``params`` checked against ``cls``'s typed keyword arguments: known names, valid types,
    per-task mappings turned into lists in task order."""
    allowed = cls.hyperparameters()
    hints = typing.get_type_hints(cls.__init__)
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key not in allowed:
            listing = ", ".join(f"{n} ({type_name(hints.get(n))}, default {p.default!r})" for n, p in allowed.items()) or "none"
            raise ParamError(f"params.{key}", f"'{strategy}' has no hyperparameter '{key}'.{did_you_mean(key, allowed)} Allowed: {listing}")
        if key == "weights" or isinstance(value, dict):  # any per-task value may be a mapping task -> value
            value = _per_task_values(value, task_names, key)
        try:
            kwargs[key] = TypeAdapter(hints[key]).validate_python(value, strict=False)
        except ValidationError as exc:
            detail = exc.errors()[0]["msg"]
            raise ParamError(f"params.{key}", f"{value!r} is not a valid {type_name(hints[key])} ({detail})") from None
    return kwargs


def _check_sharing(sharing: SharingSpec, path: str, task_names: list[str]) -> list[Problem]:
    try:
        sharing_kwargs(sharing, task_names)
    except ParamError as exc:
        return [Problem(f"{path}.{exc.field}", exc.message)]
    return []


def _check_pairing(candidate: CandidateSpec, sharing: SharingSpec, path: str, encoder: Any = None) -> list[Problem]:
    """A gradient aggregator combines the tasks' gradients on shared parameters; an architecture
    with none leaves it nothing to combine. LoRA adapts linear layers, which a CNN's stages
    are not."""
    where = f"{path}.sharing" if candidate.sharing is not None else "sharing"
    if sharing.name == "lora" and isinstance(encoder, CnnEncoderSpec):
        return [Problem(f"{where}.name", "lora adds adapters to the linear layers of the encoder's stages, and a cnn encoder's stages are convolutions; use encoder kind vit, or another sharing")]
    depths = sharing.params.get("depths") or []
    if sharing.name == "hierarchical" and isinstance(encoder, VitEncoderSpec) and encoder.pooling == "cls" and 0 in (depths.values() if isinstance(depths, dict) else depths):
        return [Problem(f"{where}.params.depths", "depth 0 reads the stem's output, and with pooling cls a vit's stem output there is the [CLS] embedding alone, the same for every image; use depths of 1 or more, or encoder.pooling: mean")]
    weighting = WEIGHTINGS[candidate.weighting]
    if issubclass(weighting, GradientAggregator) and not SHARINGS[sharing.name].shares_parameters:
        loss_based = ", ".join(sorted(n for n, c in WEIGHTINGS.items() if not issubclass(c, GradientAggregator))[:4])
        return [Problem(
            f"{path}.weighting",
            f"'{candidate.weighting}' combines task gradients on shared parameters, but sharing '{sharing.name}' gives "
            f"every task its own parameters, so there is nothing to combine; use a loss weighting ({loss_based}, ...) "
            f"or a sharing that shares parameters",
        )]
    return []


def _check_candidate(candidate: CandidateSpec, path: str, task_names: list[str]) -> list[Problem]:
    problems = []
    if candidate.search is not None:
        if candidate.weighting != "scalarization":
            problems.append(Problem(f"{path}.search", f"only a 'scalarization' candidate searches task weights, this one uses '{candidate.weighting}'; remove search or set weighting: scalarization"))
        if "weights" in candidate.params:
            problems.append(Problem(f"{path}.params.weights", "fixed weights and a weight search exclude each other; remove one"))
        if candidate.search.low >= candidate.search.high:
            problems.append(Problem(f"{path}.search.low", f"low ({candidate.search.low}) must be below high ({candidate.search.high})"))
    if problems:
        return problems
    try:
        weighting_kwargs(candidate, task_names)
    except ParamError as exc:
        return [Problem(f"{path}.{exc.field}", exc.message)]
    return []


def _per_task_values(value: Any, task_names: list[str], key: str = "weights") -> list[float]:
    count = len(task_names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in task_names]
        missing = [t for t in task_names if t not in value]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"names unknown task(s) {unknown}")
            if missing:
                parts.append(f"lacks task(s) {missing}")
            raise ParamError(f"params.{key}", f"{' and '.join(parts)}; give one value for each of {task_names}")
        value = [value[t] for t in task_names]
    if not isinstance(value, (list, tuple)):
        raise ParamError(f"params.{key}", f"{value!r} is neither a list nor a mapping task -> value")
    if len(value) != count:
        raise ParamError(f"params.{key}", f"{len(value)} value(s) for {count} tasks {task_names}; give one value per task")
    try:
        weights = [float(w) for w in value]
    except (TypeError, ValueError):
        raise ParamError(f"params.{key}", f"{value!r} are not all numbers") from None
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ParamError(f"params.{key}", f"{weights} must be finite and non-negative")
    if key == "weights" and not any(w > 0 for w in weights):
        raise ParamError(f"params.{key}", f"{weights} are all zero; at least one task must count")
    return weights


def _duplicates(values: list, path: str, field: str | None) -> list[Problem]:
    seen: dict[Any, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            where = f"{path}[{i}].{field}" if field else f"{path}[{i}]"
            problems.append(Problem(where, f"{value!r} repeats {path}[{seen[value]}]; each must be unique"))
        seen.setdefault(value, i)
    return problems
