"""Study specs: YAML in, a validated :class:`StudySpec` out, or a :class:`StudyError` that names
each bad field, the value found and what is allowed.

Every setting is listed once below with what it means; unknown keys are errors (with a
did-you-mean), so a typo can never silently fall back to a default.
"""

from __future__ import annotations

import difflib
import math
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from polytask.errors import Problem, StudyError
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.weighting import WEIGHTINGS, type_name
from polytask.tasks import TASK_TYPES, Direction

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


class BuiltinSource(_Model):
    """A dataset polytask knows how to fetch from a pinned artifact."""

    kind: Literal["builtin"]
    name: Literal["rotten_tomatoes"]


class FilesSource(_Model):
    """Local CSV / JSON (lines) / Parquet files; relative paths are relative to the spec file."""

    kind: Literal["files"]
    train: str
    validation: str | None = None  # when absent, split off the train file (see `split`)
    test: str | None = None
    format: Literal["csv", "json", "parquet"] | None = None  # default: from the file extension


class HubSource(_Model):
    """A Hugging Face dataset, where the hub can be reached."""

    kind: Literal["hub"]
    name: str
    config: str | None = None
    revision: str | None = None
    train_split: str = "train"
    validation_split: str | None = "validation"  # None: split off train (see `split`)
    test_split: str | None = "test"


Source = Annotated[Union[BuiltinSource, FilesSource, HubSource], Field(discriminator="kind")]


class SplitSpec(_Model):
    """Fractions held out of the training data when the source has no such split. The split is
    a property of the dataset, seeded independently of the trial seeds, so every trial of a
    study sees the same validation and test rows."""

    validation: float = Field(0.1, gt=0, lt=0.5)
    test: float = Field(0.1, ge=0, lt=0.5)
    seed: int = 0


class ExampleLimits(_Model):
    """Use at most this many rows of each split (a fixed, seeded subsample); None: all."""

    train: int | None = Field(None, gt=0)
    validation: int | None = Field(None, gt=0)
    test: int | None = Field(None, gt=0)


class DataSpec(_Model):
    source: Source
    text_column: str = "text"
    split: SplitSpec = SplitSpec()
    max_examples: ExampleLimits = ExampleLimits()


def _registered(kind: str, registry: dict) -> AfterValidator:
    """A field validator: the value must be a name in ``registry`` (error: did-you-mean + list)."""

    def check(value: str) -> str:
        if value not in registry:
            raise ValueError(_unknown(kind, value, registry))
        return value

    return AfterValidator(check)


class TaskSpec(_Model):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    type: Annotated[str, _registered("task type", TASK_TYPES)] = "classification"
    label_column: str
    classes: list[str] | None = None  # default: the sorted label values seen in the train split
    metric: str = "accuracy"  # the primary metric: early stopping, selection and the search use it
    direction: Direction | None = None  # default: the metric's own (accuracy: max)

    @field_validator("classes")
    @classmethod
    def _classes_distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(value) < 2 or len(set(value)) != len(value)):
            raise ValueError("classes must list at least two distinct labels")
        return value

    @property
    def resolved_direction(self) -> Direction:
        return self.direction or TASK_TYPES[self.type].metrics[self.metric].direction


# --------------------------------------------------------------------------- encoder


class _EncoderCommon(_Model):
    trainable_layers: int | None = Field(None, ge=0)  # top N transformer layers trained; None: all
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = Field(128, ge=8, le=4096)  # tokens per text after truncation
    dropout: float = Field(0.1, ge=0, lt=1)  # before each task head


class PretrainedEncoder(_EncoderCommon):
    """A transformers encoder: a pinned artifact name (``minilm-l6``), a local directory in the
    Hugging Face layout, or a hub model id (where the hub can be reached)."""

    kind: Literal["pretrained"]
    name: str = "minilm-l6"
    # With trainable_layers set: compute the frozen layers once per study, not in every step of
    # every trial (see polytask.frozen). Off: every trial runs the whole encoder.
    cache_frozen_layers: bool = True


class RandomEncoder(_EncoderCommon):
    """A small, randomly initialised BERT whose WordPiece tokenizer is trained on the study's
    training texts. Runs offline; meant for tests and smoke studies."""

    kind: Literal["random"]
    hidden_size: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    intermediate_size: int = Field(128, ge=8)
    vocab_size: int = Field(2000, ge=100)


EncoderSpec = Annotated[Union[PretrainedEncoder, RandomEncoder], Field(discriminator="kind")]


class SharingSpec(_Model):
    name: Annotated[str, _registered("sharing strategy", SHARINGS)] = "hard"
    params: dict[str, Any] = {}


# --------------------------------------------------------------------------- candidates


class SearchSpec(_Model):
    """Optuna search over the task weights of a scalarization candidate. Each task's raw weight
    is drawn log-uniformly from [low, high]; the weights are then scaled to sum to the number of
    tasks, so equal weighting is the point (1, ..., 1). Multi-objective (one objective per task's
    primary validation metric), so the candidate yields a Pareto front."""

    trials: int = Field(ge=1)
    low: float = Field(0.1, gt=0)
    high: float = Field(10.0, gt=0)
    seed: int = 0  # Optuna sampler seed


class CandidateSpec(_Model):
    name: str | None = Field(None, pattern=NAME_PATTERN)  # default: the weighting's name
    weighting: Annotated[str, _registered("weighting strategy", WEIGHTINGS)]
    params: dict[str, Any] = {}  # the strategy's hyperparameters (`polytask strategies` lists them)
    search: SearchSpec | None = None

    @property
    def label(self) -> str:
        return self.name or self.weighting


# --------------------------------------------------------------------------- running


class EarlyStopping(_Model):
    patience: int | None = Field(None, ge=1)  # epochs without improvement of val/score; None: off
    min_delta: float = Field(0.0, ge=0)


class TrainingSpec(_Model):
    epochs: int = Field(3, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)  # None: one pass over the training rows
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, gt=0)  # None: no clipping
    early_stopping: EarlyStopping = EarlyStopping()
    evaluate_test: bool = True  # evaluate the selected (best validation) epoch on the test split
    log_every_steps: int = Field(10, ge=1)  # step-level MLflow points: train losses, task weights


class ResourcesSpec(_Model):
    """Ray resources of one trial. Torch uses as many threads as CPUs given."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        if value > 1 and not float(value).is_integer():
            raise ValueError("a trial may take a fraction of one GPU or a whole number of GPUs")
        return value


class ExecutionSpec(_Model):
    max_concurrent_trials: int | None = Field(None, ge=1)  # None: as many as resources allow
    max_retries: int = Field(1, ge=0)  # a failed trial is retried from its last checkpoint


class TrackingSpec(_Model):
    uri: str | None = None  # None: sqlite:///<output>/mlflow.db
    experiment: str | None = None  # None: the study name


class StudySpec(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    data: DataSpec
    tasks: list[TaskSpec] = Field(min_length=1)
    encoder: EncoderSpec
    sharing: SharingSpec = SharingSpec()
    candidates: list[CandidateSpec] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    training: TrainingSpec = TrainingSpec()
    resources: ResourcesSpec = ResourcesSpec()
    execution: ExecutionSpec = ExecutionSpec()
    tracking: TrackingSpec = TrackingSpec()
    output: str | None = None  # None: runs/<name>, relative to the working directory

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def candidate(self, label: str) -> CandidateSpec:
        return next(c for c in self.candidates if c.label == label)

    def output_dir(self) -> Path:
        return Path(self.output or Path("runs") / self.name).resolve()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# --------------------------------------------------------------------------- loading


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec; raise :class:`StudyError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise StudyError([Problem("", f"no such spec file: {path}")])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        reason = getattr(exc, "problem", None) or str(exc)
        raise StudyError([Problem(where, f"not valid YAML: {reason}")], str(path)) from None
    return parse_spec(raw, source=str(path), base_dir=path.parent)


def parse_spec(raw: Any, source: str | None = None, base_dir: Path | None = None) -> StudySpec:
    if not isinstance(raw, dict):
        raise StudyError([Problem("", f"a study spec is a mapping of fields, got {type(raw).__name__}")], source)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise StudyError([_problem_from_pydantic(e) for e in exc.errors()], source) from None
    problems = check_spec(spec)
    if problems:
        raise StudyError(problems, source)
    if base_dir is not None:
        spec = _resolve_paths(spec, base_dir)
    return spec


def check_spec(spec: StudySpec) -> list[Problem]:
    """Checks across fields, after each field has its type."""
    problems: list[Problem] = []
    problems += _duplicates([t.name for t in spec.tasks], "tasks", "name")
    problems += _duplicates([c.label for c in spec.candidates], "candidates", "name")
    problems += _duplicates(spec.seeds, "seeds", None)
    for i, task in enumerate(spec.tasks):
        task_type = TASK_TYPES[task.type]
        if task.metric not in task_type.metrics:
            problems.append(Problem(f"tasks[{i}].metric", _unknown(f"{task.type} metric", task.metric, task_type.metrics)))
        elif task.direction and task.direction != task_type.metrics[task.metric].direction:
            natural = task_type.metrics[task.metric].direction
            problems.append(Problem(
                f"tasks[{i}].direction",
                f"'{task.direction}' contradicts {task.metric}, which is better when {'higher' if natural == 'max' else 'lower'}; "
                f"remove direction or set it to '{natural}'",
            ))
    for i, candidate in enumerate(spec.candidates):
        problems += _check_candidate(candidate, f"candidates[{i}]", spec.task_names)
    enc = spec.encoder
    if isinstance(enc, RandomEncoder):
        if enc.hidden_size % enc.heads:
            problems.append(Problem("encoder.heads", f"hidden_size {enc.hidden_size} is not divisible by heads {enc.heads}"))
        if enc.trainable_layers is not None and enc.trainable_layers > enc.layers:
            problems.append(Problem("encoder.trainable_layers", f"{enc.trainable_layers} is more than the encoder's {enc.layers} layers"))
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
    allowed = cls.hyperparameters()
    hints = typing.get_type_hints(cls.__init__)
    kwargs: dict[str, Any] = {}
    for key, value in candidate.params.items():
        if key not in allowed:
            listing = ", ".join(f"{n} ({type_name(hints.get(n))}, default {p.default!r})" for n, p in allowed.items()) or "none"
            raise ParamError(f"params.{key}", f"'{candidate.weighting}' has no hyperparameter '{key}'.{_did_you_mean(key, allowed)} Allowed: {listing}")
        if key == "weights":
            value = _task_weights(value, task_names)
        try:
            kwargs[key] = TypeAdapter(hints[key]).validate_python(value, strict=False)
        except ValidationError as exc:
            detail = exc.errors()[0]["msg"]
            raise ParamError(f"params.{key}", f"{value!r} is not a valid {type_name(hints[key])} ({detail})") from None
    if candidate.search is not None:
        kwargs["weights"] = [1.0] * len(task_names)  # placeholder; each trial's sample replaces it
    try:
        cls(len(task_names), **kwargs)
    except ValueError as exc:
        raise ParamError("params", str(exc)) from None
    return kwargs


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


def _task_weights(value: Any, task_names: list[str]) -> list[float]:
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
            raise ParamError("params.weights", f"{' and '.join(parts)}; give one weight for each of {task_names}")
        value = [value[t] for t in task_names]
    if not isinstance(value, (list, tuple)):
        raise ParamError("params.weights", f"{value!r} is neither a list nor a mapping task -> weight")
    if len(value) != count:
        raise ParamError("params.weights", f"{len(value)} weight(s) for {count} tasks {task_names}; give one weight per task")
    try:
        weights = [float(w) for w in value]
    except (TypeError, ValueError):
        raise ParamError("params.weights", f"{value!r} are not all numbers") from None
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ParamError("params.weights", f"{weights} must be finite and non-negative")
    if not any(w > 0 for w in weights):
        raise ParamError("params.weights", f"{weights} are all zero; at least one task must count")
    return weights


def _resolve_paths(spec: StudySpec, base_dir: Path) -> StudySpec:
    source = spec.data.source
    if not isinstance(source, FilesSource):
        return spec
    resolved = {
        split: str((base_dir / value).resolve()) if value is not None else None
        for split, value in (("train", source.train), ("validation", source.validation), ("test", source.test))
    }
    data = spec.data.model_copy(update={"source": source.model_copy(update=resolved)})
    return spec.model_copy(update={"data": data})


def _duplicates(values: list, path: str, field: str | None) -> list[Problem]:
    seen: dict[Any, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            where = f"{path}[{i}].{field}" if field else f"{path}[{i}]"
            problems.append(Problem(where, f"{value!r} repeats {path}[{seen[value]}]; each must be unique"))
        seen.setdefault(value, i)
    return problems


def _unknown(kind: str, value: Any, known: Any) -> str:
    return f"unknown {kind} '{value}'.{_did_you_mean(value, known)} Allowed: {', '.join(sorted(known))}"


def _did_you_mean(value: Any, options: Any) -> str:
    close = difflib.get_close_matches(str(value), list(options), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


# --------------------------------------------------------------------------- pydantic errors


def _problem_from_pydantic(error: dict[str, Any]) -> Problem:
    loc = error["loc"]
    path = _format_loc(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(loc[-1])
        allowed = _fields_at(loc[:-1])
        return Problem(path, f"unknown field '{field}'.{_did_you_mean(field, allowed)} Allowed here: {', '.join(allowed)}")
    if kind == "missing":
        return Problem(path, "required field is missing; add it")
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return Problem(f"{path}.kind", f"kind must be one of {expected}; got {error.get('input', {}).get('kind') if isinstance(error.get('input'), dict) else error.get('input')!r}")
    message = error["msg"]
    if kind == "value_error":  # our validators' messages already quote the value
        return Problem(path, message.removeprefix("Value error, "))
    return Problem(path, f"{message} (got {error.get('input')!r})")


# The models pydantic tells apart by their `kind` (its error locations include the kind).
TAGGED: dict[str, type[BaseModel]] = {
    typing.get_args(model.model_fields["kind"].annotation)[0]: model
    for model in (BuiltinSource, FilesSource, HubSource, PretrainedEncoder, RandomEncoder)
}


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in TAGGED:  # a kind is not a field the user wrote
            out += f".{part}" if out else str(part)
    return out


def _fields_at(loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` inside a StudySpec, for did-you-mean hints."""
    models: list[type[BaseModel]] = [StudySpec]
    for part in loc:
        if isinstance(part, int):
            continue
        if part in TAGGED and TAGGED[part] in models:
            models = [TAGGED[part]]
        elif len(models) == 1 and part in models[0].model_fields:
            models = _models_in(models[0].model_fields[part].annotation)
        else:
            return []
    return list(models[0].model_fields) if len(models) == 1 else []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, Union, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
