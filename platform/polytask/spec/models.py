"""The study spec's fields: every setting, once, with what it means.

Unknown keys are errors (with a did-you-mean), so a typo never silently falls back to a default.
Checks across fields live in ``checks.py``; reading YAML in ``__init__.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from polytask.errors import unknown_name
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.weighting import WEIGHTINGS
from polytask.tasks import TASK_TYPES, Direction

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # one path component: no "/", never "." or ".."
TASK_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


class _SourceCommon(_Model):
    # Rename columns right after loading, {name in the source: name the spec uses}: map a
    # dataset's own column names onto the ones text_column / label_column / ... refer to.
    columns: dict[str, str] = {}


class BuiltinSource(_SourceCommon):
    """A dataset polytask reads from a pinned artifact (`polytask fetch` downloads them ahead of time)."""

    kind: Literal["builtin"]
    # rotten_tomatoes: review texts (polytask.data.rotten_tomatoes); presidential_debates: 2016
    # debate statements with speaker and party (polytask.data.debates); census_income: UCI
    # Census-Income KDD records, tabular (polytask.data.census); multi_fashion: two overlapped
    # Fashion-MNIST items per image (polytask.data.multi_fashion); qm9: molecules with
    # structure descriptors and 12 properties (polytask.data.qm9)
    name: Literal["rotten_tomatoes", "presidential_debates", "census_income", "multi_fashion", "qm9"]


class FilesSource(_SourceCommon):
    """Local CSV / TSV / JSON (lines) / Parquet files; relative paths are relative to the spec
    file. CSV files are read with pandas.read_csv (compression from the extension: .gz, .bz2,
    .zip, .xz)."""

    kind: Literal["files"]
    train: str  # the file of training rows
    validation: str | None = None  # when absent, split off the train file (see `split`)
    test: str | None = None  # when absent, split off the train file (see `split`)
    # default: from the file extension (.csv, .tsv -- CSV with tabs --, .json, .jsonl, .parquet)
    format: Literal["csv", "json", "parquet"] | None = None
    # CSV only: the character between fields, such as ';' or '|' (a tab: "\t"); None: ','
    # (a tab for .tsv / .tsv.gz files)
    delimiter: str | None = Field(None, min_length=1)
    # CSV only: whether the first line holds the column names; false: give them in column_names
    header: bool = True
    # CSV only, with header: false: the name of each column, in order (one per field of a line)
    column_names: list[str] | None = None
    # CSV only: a line starting with this character is skipped, and a line's text after it
    # ignored (UCI Adult's test file opens with a line "|1x3 Cross validator": comment: '|')
    comment: str | None = Field(None, min_length=1, max_length=1)
    # Extra cell values that mean "missing", such as '?' or 'n/a', on top of pandas' own (empty,
    # NA, NaN, null, ...); compared after strip_spaces
    na_values: list[str] = []
    # Strip leading and trailing whitespace from text cells and column names (' >50K' -> '>50K')
    strip_spaces: bool = True

    def format_of(self, path: str) -> str | None:
        """The format of one of this source's files: ``format``, else its extension's."""
        return self.format or file_format(path)

    def csv_delimiter(self, path: str) -> str:
        if self.delimiter is not None:
            return "\t" if self.delimiter == "\\t" else self.delimiter
        return "\t" if "".join(Path(path).suffixes).lower().endswith((".tsv", ".tsv.gz", ".tsv.bz2")) else ","


FILE_FORMATS = {
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".tsv.gz", ".tsv.bz2"),
    "json": (".json", ".jsonl", ".json.gz", ".jsonl.gz"),
    "parquet": (".parquet",),
}


def file_format(path: str) -> str | None:
    """csv, json or parquet from a file's extension; None when it tells nothing."""
    suffixes = "".join(Path(path).suffixes).lower()
    for fmt, endings in FILE_FORMATS.items():
        if suffixes.endswith(endings):
            return fmt
    return None


class HubSource(_SourceCommon):
    """A Hugging Face dataset, where the hub can be reached."""

    kind: Literal["hub"]
    name: str  # the dataset's hub id, as datasets.load_dataset takes it
    config: str | None = None  # the dataset's configuration (subset) name
    revision: str | None = None  # a branch, tag or commit of the dataset's repository; None: the default branch
    train_split: str = "train"  # the hub split that holds the training rows
    validation_split: str | None = "validation"  # None: split off train (see `split`)
    test_split: str | None = "test"  # None: split off train (see `split`)


Source = Annotated[Union[BuiltinSource, FilesSource, HubSource], Field(discriminator="kind")]


def describe_source(source: BuiltinSource | FilesSource | HubSource, split: str = "train") -> str:
    """A few words naming a source in messages: ``builtin rotten_tomatoes``, ``files a.csv``;
    for files, the file ``split`` is read from (the train file where that split is held out
    of it)."""
    if isinstance(source, FilesSource):
        return f"files {Path(getattr(source, split, None) or source.train).name}"
    return f"{source.kind} {source.name}"


class SplitSpec(_Model):
    """Fractions held out of the training data when the source has no such split. The split is
    a property of the dataset, seeded independently of the trial seeds, so every trial of a
    study sees the same validation and test rows."""

    validation: float = Field(0.1, gt=0, lt=0.5)  # the fraction held out for validation
    test: float = Field(0.1, ge=0, lt=0.5)  # the fraction held out for test
    seed: int = 0  # seeds the split (not the trials)


class ExampleLimits(_Model):
    """Use at most this many rows of each split (a fixed, seeded subsample); None: all."""

    train: int | None = Field(None, gt=0)  # training rows at most
    validation: int | None = Field(None, gt=0)  # validation rows at most
    test: int | None = Field(None, gt=0)  # test rows at most


class SamplingSpec(_Model):
    """Which task's batch each training step takes when every task has its own dataset
    (``tasks[i].source``). With ``n_k`` training rows in task k's dataset:

    * ``proportional``: task k with probability ``n_k / sum n``;
    * ``temperature``: probability proportional to ``n_k ** alpha`` (alpha 1: proportional,
      0: uniform; 0.5 is the square-root sampling of Stickland & Murray 2019);
    * ``annealed``: Stickland & Murray (ICML 2019, "BERT and PALs"): ``n_k ** alpha_e`` with
      ``alpha_e = 1 - (1 - final_alpha) * (e - 1) / (E - 1)`` in epoch e of E, from
      proportional towards uniform (the paper's final_alpha: 0.2);
    * ``round_robin``: the tasks in turn, one batch each;
    * ``all``: every step one batch of every task (LibMTL's multi-input mode), so every
      weighting strategy sees every task's loss in every step.

    The first four train one task per step; each epoch's batch counts per task are the
    policy's shares of the epoch's steps exactly (largest remainder), in a seeded order.
    """

    policy: Literal["proportional", "temperature", "annealed", "round_robin", "all"] = "proportional"  # see the list above
    alpha: float = Field(0.5, ge=0, le=1)  # temperature: the exponent
    final_alpha: float = Field(0.2, ge=0, le=1)  # annealed: the exponent in the last epoch


class DataSpec(_Model):
    """Where the examples come from and which columns the encoder reads."""

    # One dataset with a label column per task; None when each task names its own
    # (tasks[i].source, joined by `sampling`).
    source: Source | None = None
    text_column: str = "text"  # read by text encoders (pretrained, random)
    image_column: str = "image"  # read by image encoders (cnn, vit): arrays [H, W] or [C, H, W]
    # Feature columns, read by a tabular encoder. Categorical: codes of the train split's
    # values; a missing value and one the train split lacks share code 0 (whatever `missing`
    # says). Numeric: standardised with the mean and std of the train split's values.
    categorical_columns: list[str] = []
    numeric_columns: list[str] = []  # numeric feature columns (see categorical_columns)
    # A missing (empty, NaN, a na_values marker) or infinite value in a numeric column:
    # error: refuse the data, naming column, split, file and count;
    # impute: the train split's median of the column, plus one 0/1 missing-indicator feature
    #   per numeric column with missing values in the train split (scikit-learn's
    #   SimpleImputer(strategy="median", add_indicator=True));
    # drop: drop rows with a missing numeric feature from every split (`polytask validate`
    #   counts them).
    missing: Literal["error", "impute", "drop"] = "error"
    split: SplitSpec = SplitSpec()  # the held-out fractions, where the source has no validation / test split
    max_examples: ExampleLimits = ExampleLimits()  # per dataset
    sampling: SamplingSpec | None = None  # with one dataset per task; None: proportional


def _registered(kind: str, registry: dict, elsewhere: tuple[dict, str] | None = None) -> AfterValidator:
    """A field validator: the value must be a name in ``registry`` (error: did-you-mean + list).
    ``elsewhere``: another registry and what to say when the name is one of its names (a
    sharing strategy written as a weighting), formatted with ``name``."""

    def check(value: str) -> str:
        if value not in registry:
            if elsewhere is not None and value in elsewhere[0]:
                raise ValueError(elsewhere[1].format(name=value))
            raise ValueError(unknown_name(kind, value, registry))
        return value

    return AfterValidator(check)


IS_SHARING = (SHARINGS, "{name} is a sharing strategy, not a weighting: write `sharing: {{name: {name}}}`")
IS_WEIGHTING = (WEIGHTINGS, "{name} is a weighting strategy, not a sharing: write `weighting: {name}` in a candidate")


class TaskSpec(_Model):
    """One task: its label column, its type and the metric that scores it."""

    name: str = Field(pattern=TASK_NAME_PATTERN)  # the task's name in metrics, reports and per-task params
    # classification (one label per row), multilabel (a set of labels per row), regression (a
    # number per row), token_classification (a BIO tag per word; the text column holds words)
    type: Annotated[str, _registered("task type", TASK_TYPES)] = "classification"
    label_column: str  # the column holding this task's labels (or targets)
    # classification / multilabel: the labels; token_classification: the tags ("O", "B-PER",
    # ...). Default: the sorted values seen in the train split.
    classes: list[str] | None = None
    separator: str = "|"  # multilabel: between the labels of a row written as one string
    # classification / multilabel: rename label values in every split right after loading,
    # before the checks and the encoding, {value in the data: class}: e.g. {'>50K.': '>50K'}
    # where the test file spells a class differently from the train file.
    label_map: dict[str, str] = {}
    metric: str | None = None  # the primary metric (selection, early stopping, search); None: the type's default
    direction: Direction | None = None  # default: the metric's own (accuracy: max)
    # This task's own dataset (then every task names one, and data.source is left out); its
    # text column when it differs from data.text_column.
    source: Source | None = None
    text_column: str | None = None  # this task's own dataset's text column; None: data.text_column
    # An auxiliary task is trained like the others but left out of the objective the search
    # optimises, of model selection (val/score) and of the comparison's headline.
    auxiliary: bool = False

    @field_validator("label_map", mode="before")
    @classmethod
    def _numbers_as_labels(cls, value: Any) -> Any:
        """A number written in YAML (``{1: positive}``) is the label as the data spells it."""
        if not isinstance(value, dict):
            return value

        def text(v: Any) -> Any:
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

        return {text(k): text(v) for k, v in value.items()}

    @field_validator("classes")
    @classmethod
    def _classes_distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(value) < 2 or len(set(value)) != len(value)):
            raise ValueError("classes must list at least two distinct labels")
        return value

    @property
    def primary_metric(self) -> str:
        return self.metric or TASK_TYPES[self.type].default_metric

    @property
    def resolved_direction(self) -> Direction:
        return self.direction or TASK_TYPES[self.type].metrics[self.primary_metric].direction


# --------------------------------------------------------------------------- encoder


class _EncoderCommon(_Model):
    trainable_layers: int | None = Field(None, ge=0)  # top N transformer layers trained; None: all
    pooling: Literal["mean", "cls"] = "mean"  # one vector per text: the mean of the token states or the [CLS] token's
    max_length: int = Field(128, ge=8, le=4096)  # tokens per text after truncation
    dropout: float = Field(0.1, ge=0, lt=1)  # before each task head


class PretrainedEncoder(_EncoderCommon):
    """A transformers encoder: a pinned artifact name (``minilm-l6``), a local directory in the
    Hugging Face layout, or a hub model id (where the hub can be reached)."""

    kind: Literal["pretrained"]
    name: str = "minilm-l6"  # a pinned artifact name, a local directory or a hub model id (see above)
    # With trainable_layers set: compute the frozen layers once per study, not in every step of
    # every trial (see polytask.training.frozen). Off: every trial runs the whole encoder.
    cache_frozen_layers: bool = True


class RandomEncoder(_EncoderCommon):
    """A small, randomly initialised BERT whose WordPiece tokenizer is trained on the study's
    training texts. Runs offline; meant for tests and smoke studies."""

    kind: Literal["random"]
    hidden_size: int = Field(64, ge=8)  # width of the token states
    layers: int = Field(2, ge=1)  # transformer layers
    heads: int = Field(2, ge=1)  # attention heads per layer
    intermediate_size: int = Field(128, ge=8)  # width of each layer's feed-forward block
    vocab_size: int = Field(2000, ge=100)  # size of the WordPiece vocabulary trained on the training texts


class TabularEncoderSpec(_Model):
    """Records of feature columns (``data.categorical_columns``, ``data.numeric_columns``): an
    embedding per categorical column, concatenated with the numeric features, then an MLP (see
    polytask.encoders.tabular). Trains from scratch; needs no tokenizer."""

    kind: Literal["tabular"]
    # Width of each categorical column's embedding; None: fastai's rule of thumb for a column
    # of n codes (its values + the code for missing/unseen), min(600, round(1.6 * n ** 0.56)).
    embedding_dim: int | None = Field(None, ge=1)
    hidden: list[Annotated[int, Field(ge=1)]] = []  # MLP stages (Linear -> ReLU) after the concat
    stage_dropout: float = Field(0.0, ge=0, lt=1)  # after each MLP stage
    dropout: float = Field(0.1, ge=0, lt=1)  # before each task head


class CnnEncoderSpec(_Model):
    """Images (``data.image_column``): a small convolutional network trained from scratch,
    conv blocks of these widths, then global average pooling (see polytask.encoders.image)."""

    kind: Literal["cnn"]
    channels: list[Annotated[int, Field(ge=1)]] = Field([32, 64], min_length=1)  # one conv block each
    kernel_size: int = Field(3, ge=1)  # side of each convolution's square kernel
    stage_dropout: float = Field(0.0, ge=0, lt=1)  # after each block
    dropout: float = Field(0.1, ge=0, lt=1)  # before each task head


class VitEncoderSpec(_Model):
    """Images (``data.image_column``): a small vision transformer built from a transformers
    ``ViTConfig``, randomly initialised (Dosovitskiy et al., ICLR 2021)."""

    kind: Literal["vit"]
    patch_size: int = Field(4, ge=1)  # must divide the image size
    hidden_size: int = Field(64, ge=8)  # width of the patch tokens' states
    layers: int = Field(2, ge=1)  # transformer layers
    heads: int = Field(2, ge=1)  # attention heads per layer
    intermediate_size: int = Field(128, ge=8)  # width of each layer's feed-forward block
    pooling: Literal["cls", "mean"] = "cls"  # the [CLS] token's state, or the mean over all tokens ([CLS] included)
    stage_dropout: float = Field(0.0, ge=0, lt=1)  # the transformer's own dropout
    dropout: float = Field(0.1, ge=0, lt=1)  # before each task head


EncoderSpec = Annotated[Union[PretrainedEncoder, RandomEncoder, TabularEncoderSpec, CnnEncoderSpec, VitEncoderSpec], Field(discriminator="kind")]
TEXT_ENCODERS = (PretrainedEncoder, RandomEncoder)
IMAGE_ENCODERS = (CnnEncoderSpec, VitEncoderSpec)


class SharingSpec(_Model):
    """Which parameters the tasks share (`polytask strategies` lists the architectures)."""

    name: Annotated[str, _registered("sharing strategy", SHARINGS, IS_WEIGHTING)] = "hard"  # the architecture
    params: dict[str, Any] = {}  # the architecture's hyperparameters; per-task ones may map task -> value


class HeadsSpec(_Model):
    """Every task's head: dropout, a tower of ReLU layers of these widths, the output layer."""

    hidden: list[Annotated[int, Field(ge=1)]] = []  # widths of the tower's layers; []: the output layer alone


# --------------------------------------------------------------------------- candidates


class SearchSpec(_Model):
    """Optuna search over the task weights of a scalarization candidate. Each task's raw weight
    is drawn log-uniformly from [low, high]; the weights are then scaled to sum to the number of
    tasks, so equal weighting is the point (1, ..., 1). Multi-objective (one objective per task's
    primary validation metric), so the candidate yields a Pareto front."""

    trials: int = Field(ge=1)  # weight configurations Optuna tries
    low: float = Field(0.1, gt=0)  # the lower end of each raw weight's range
    high: float = Field(10.0, gt=0)  # the upper end (above low)
    seed: int = 0  # Optuna sampler seed


class CandidateSpec(_Model):
    """One strategy the study compares: a task weighting, optionally with its own sharing, sampling
    or distillation, and optionally a search over task weights (tuned scalarization)."""

    name: str | None = Field(None, pattern=NAME_PATTERN)  # default: weighting, or sharing-weighting
    weighting: Annotated[str, _registered("weighting strategy", WEIGHTINGS, IS_SHARING)] = "equal"  # the task-weighting strategy (see `polytask strategies`)
    params: dict[str, Any] = {}  # the strategy's hyperparameters (`polytask strategies` lists them)
    search: SearchSpec | None = None  # scalarization only: search its task weights
    sharing: SharingSpec | None = None  # None: the study's sharing
    sampling: SamplingSpec | None = None  # one dataset per task: None, the study's data.sampling
    # Distil the study's single-task teachers into this candidate (see DistillationSpec).
    distill: bool = False

    @property
    def label(self) -> str:
        """The name, else the parts set: ``[sharing-][sampling-]weighting``."""
        if self.name:
            return self.name
        parts = [self.sharing.name if self.sharing else None, self.sampling.policy if self.sampling else None, self.weighting]
        return "-".join(p for p in parts if p)


class DistillationSpec(_Model):
    """Born-again multi-task networks (BAM!, Clark et al., ACL 2019). When a candidate sets
    ``distill``, the study first trains one single-task teacher per task (the study's own model
    for that task alone, its training settings, seed ``teacher_seed``), then trains the candidate's
    multi-task student on ``lambda * gold + (1 - lambda) * teacher`` targets. With teacher
    annealing lambda rises linearly from 0 to 1 over training (the student ends on the gold
    labels); without it lambda is 0 (pure distillation)."""

    teacher_seed: int = 0  # the seed every teacher trains with
    annealing: bool = True  # teacher annealing (see above); false: pure distillation


# --------------------------------------------------------------------------- running


class EarlyStopping(_Model):
    """Stop a trial whose validation score has not improved for `patience` epochs."""

    patience: int | None = Field(None, ge=1)  # epochs without improvement of val/score; None: off
    min_delta: float = Field(0.0, ge=0)  # the rise in val/score that counts as an improvement


class TrainingSpec(_Model):
    """How every trial trains: the same settings for every candidate, so that strategies differ
    only in what they are."""

    # None: the encoder kind's default (pretrained 3; models trained from scratch more, and on a
    # small dataset enough epochs for the kind's minimum number of steps): polytask.spec.defaults,
    # measured in docs/defaults.md. `polytask validate` prints the value a study will use.
    epochs: int | None = Field(None, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)  # None: one pass over the training rows
    batch_size: int = Field(32, ge=1)  # rows per training batch
    eval_batch_size: int = Field(128, ge=1)  # rows per batch when evaluating or predicting
    # AdamW's peak learning rate (linear warm-up, then linear decay to 0). None: the encoder
    # kind's default, as for epochs: a pretrained transformer wants ~1e-4, a network trained
    # from scratch ~1e-3 (docs/defaults.md)
    learning_rate: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.01, ge=0)  # AdamW's; none on biases and norm scales
    warmup_ratio: float = Field(0.1, ge=0, lt=1)  # the fraction of all training steps the learning rate warms up over
    max_grad_norm: float | None = Field(1.0, gt=0)  # None: no clipping
    early_stopping: EarlyStopping = EarlyStopping()  # off unless patience is set
    evaluate_test: bool = True  # evaluate the selected (best validation) epoch on the test split
    log_every_steps: int = Field(10, ge=1)  # step-level MLflow points: train losses, task weights
    # How gradient strategies get per-task gradients: K sequential VJPs or one batched (vmapped)
    # VJP; auto = batched on CUDA, sequential on CPU (where vmap's fallbacks make it no faster).
    gradient_method: Literal["auto", "sequential", "batched"] = "auto"
    # Forward passes under autocast: auto = bfloat16 on a GPU that supports it, else float32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"


class ResourcesSpec(_Model):
    """Ray resources of one trial. Torch uses as many threads as CPUs given."""

    cpu: float = Field(1.0, gt=0)  # CPUs per trial
    gpu: float = Field(0.0, ge=0)  # GPUs per trial: a fraction of one (trials share it) or a whole number

    @field_validator("gpu")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        if value > 1 and not float(value).is_integer():
            raise ValueError(f"{value} is neither a fraction of one GPU nor a whole number of GPUs; use e.g. 0.5, 1 or 2")
        return value


class SchedulerSpec(_Model):
    """When Ray Tune stops or changes trials, judged on ``val/score`` (the main tasks' primary
    validation metrics, each oriented so higher is better, averaged) after each epoch.

    - ``fifo``: every trial trains to the end.
    - ``asha``: Asynchronous Successive Halving (Li et al., "A System for Massively Parallel
      Hyperparameter Tuning", MLSys 2020). At epochs grace_period * reduction_factor^k a trial
      goes on only if its val/score is in the top 1/reduction_factor of the trials that reached
      that epoch; the rest stop (their MLflow runs end FINISHED, tagged ``polytask.outcome =
      stopped_by_scheduler``; Optuna records them as pruned).
    - ``pbt``: Population-Based Training (Jaderberg et al., "Population Based Training of Neural
      Networks", 2017) over the task weights, so the weights become a schedule the population
      explores (cf. Royer et al., "Scalarization for Multi-Task and Multi-Domain Learning at
      Scale", NeurIPS 2023). The study's one candidate is a searched scalarization; its
      ``search.trials`` are the population. Every ``perturbation_interval`` epochs a trial in the
      bottom ``quantile_fraction`` copies the model (and optimizer state) of one in the top
      quantile and perturbs its raw weights (x0.8 or x1.2, or a fresh draw with
      ``resample_probability``). Each run logs ``pbt/copied`` at the epochs it did, and its
      weights per step (``weight/<task>``): the schedule it followed.
    """

    kind: Literal["fifo", "asha", "pbt"] = "fifo"  # see the list above
    grace_period: int = Field(1, ge=1)  # asha: epochs every trial trains before it may be stopped
    reduction_factor: float = Field(2.0, gt=1)  # asha: the top 1/reduction_factor of the trials at each rung go on
    perturbation_interval: int = Field(1, ge=1)  # pbt: epochs between exploit/explore steps
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)  # pbt: the share of the population in the bottom (and in the top) quantile
    resample_probability: float = Field(0.25, ge=0, le=1)  # pbt: the chance a perturbation is a fresh draw instead of x0.8 / x1.2
    # pbt: every member waits at each perturbation step for the others, so the quantiles are of
    # the whole population at the same epoch (false: members exploit whoever has reported so far)
    synchronous: bool = True


class ExecutionSpec(_Model):
    """How Ray Tune runs the trials: concurrency, retries, the trial scheduler and where trial
    results and checkpoints are kept."""

    max_concurrent_trials: int | None = Field(None, ge=1)  # None: as many as resources allow
    max_retries: int = Field(1, ge=0)  # a failed trial is retried from its last checkpoint
    scheduler: SchedulerSpec = SchedulerSpec()  # when Ray Tune stops or changes trials
    # Where Ray Tune keeps the trials' results and checkpoints: a folder every node of the
    # cluster can read and write (a shared filesystem), or a URI such as s3://bucket/prefix
    # (pyarrow filesystems; credentials from the environment). None: <output>/tune, which is
    # enough on one machine. `polytask run --storage` sets it.
    storage: str | None = None


class OptunaSpec(_Model):
    """The Optuna study behind searched candidates."""

    # Where Optuna keeps the task-weight search: None keeps it in memory (saved with Tune's
    # experiment state, so `polytask resume` continues it); an RDB URL (sqlite:///optuna.db,
    # postgresql://user@host/db) lets `optuna-dashboard <URL>` watch the search live.
    storage: str | None = None


class TrackingSpec(_Model):
    """Where MLflow records the study."""

    # An MLflow tracking URI: http://host:5000 for a tracking server (`polytask server`), which
    # a study on a cluster needs. None: sqlite:///<output>/mlflow.db. `polytask run
    # --tracking-uri` (or MLFLOW_TRACKING_URI) sets it.
    uri: str | None = None
    experiment: str | None = None  # None: the study name


class TuningSpec(_Model):
    """An equal tuning budget: every candidate gets ``trials`` trials whose learning rate (and,
    for a searched scalarization candidate, task weights) Optuna proposes, then its configuration
    with the best validation ``val/score`` is trained on every seed. Without it only the searched
    candidates are tuned, which favours them (Xin et al., NeurIPS 2022)."""

    trials: int = Field(ge=1)  # trials per candidate
    learning_rate: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]  # [low, high], drawn log-uniformly
    seed: int = 0  # Optuna sampler seed


class ComparisonSpec(_Model):
    """How the strategies are compared, fair by construction (see docs/comparisons.md).

    Selection uses the validation split only: each trial answers with the epoch of its best
    ``val/score`` (``best_epoch``) or its last epoch, its test metrics are those of that epoch's
    model, and a tuned candidate's configuration is chosen on validation too.
    """

    selection: Literal["best_epoch", "last_epoch"] = "best_epoch"  # which epoch answers for a trial: its best val/score's or its last
    # One single-task model per main task and seed (the study's own model for that task alone:
    # the same encoder, the layers of the study's `sharing` between encoder and head, the same
    # head, training settings and budget): the reference of Δm. Reused from any earlier study
    # whose data, task, encoder, sharing, heads, training settings and seed are identical (a
    # fingerprint of them).
    single_task_baselines: bool = False
    reuse_baselines: bool = True  # reuse a baseline with the same fingerprint from an earlier study (see above)
    baseline_cache: str | None = None  # a folder; None: <POLYTASK_CACHE>/baselines
    tuning: TuningSpec | None = None  # None: only the searched candidates are tuned
    # Each strategy against tuned scalarization: Welch's t-test or a bootstrap test (over seeds).
    significance_test: Literal["welch", "bootstrap"] = "welch"
    confidence: float = Field(0.95, gt=0, lt=1)  # of the confidence intervals over seeds
    # Register each strategy's best model (by validation val/score) in the MLflow model registry
    # as <study>.<strategy>; the trials then also store their selected model as an artifact.
    register_models: bool = False


class StudySpec(_Model):
    """A study: the data and its tasks, the model (encoder, sharing, heads), the candidate strategies
    to compare, the seeds each is trained on, and how trials train, run and are compared. Written
    in YAML; `polytask validate SPEC` checks it against its data before anything starts."""

    name: str = Field(pattern=NAME_PATTERN)  # names the output folder and the MLflow experiment (by default)
    description: str = ""  # free text, shown at the top of the report
    data: DataSpec  # the dataset(s) and their columns
    tasks: list[TaskSpec] = Field(min_length=1)  # the tasks learned together
    encoder: EncoderSpec  # the input model the tasks share; `kind` picks one of the encoders
    sharing: SharingSpec = SharingSpec()  # the default of every candidate
    heads: HeadsSpec = HeadsSpec()  # every task's head
    candidates: list[CandidateSpec] = Field(min_length=1)  # the strategies compared, each trained on every seed
    distillation: DistillationSpec = DistillationSpec()  # used when a candidate sets distill
    seeds: list[int] = Field([0], min_length=1)  # every candidate is trained once per seed
    training: TrainingSpec = TrainingSpec()  # the optimiser, epochs and batches of every trial
    resources: ResourcesSpec = ResourcesSpec()  # per trial
    execution: ExecutionSpec = ExecutionSpec()  # how Ray Tune runs the trials
    optuna: OptunaSpec = OptunaSpec()  # where the weight search is kept
    comparison: ComparisonSpec = ComparisonSpec()  # how the candidates are compared
    tracking: TrackingSpec = TrackingSpec()  # where MLflow records the study
    output: str | None = None  # None: runs/<name>, relative to the working directory

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def per_task_sources(self) -> bool:
        """Whether each task has its own dataset (joined by data.sampling)."""
        return self.data.source is None

    @property
    def main_tasks(self) -> list[TaskSpec]:
        """The tasks the study is about: all but the auxiliary ones."""
        return [t for t in self.tasks if not t.auxiliary]

    def candidate(self, label: str) -> CandidateSpec:
        return next(c for c in self.candidates if c.label == label)

    def sharing_of(self, label: str) -> SharingSpec:
        return self.candidate(label).sharing or self.sharing

    def sampling_of(self, label: str) -> SamplingSpec:
        return self.candidate(label).sampling or self.data.sampling or SamplingSpec()

    def tuned(self, label: str) -> bool:
        """Whether a candidate's configuration is searched (its weights, or every candidate's
        learning rate with comparison.tuning) before it is trained on every seed."""
        return self.candidate(label).search is not None or self.comparison.tuning is not None

    @property
    def distills(self) -> bool:
        """Whether the study trains single-task teachers first."""
        return any(c.distill for c in self.candidates)

    def output_dir(self) -> Path:
        return Path(self.output or Path("runs") / self.name).resolve()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
