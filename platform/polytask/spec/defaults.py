"""Training settings that depend on the encoder, for a spec that leaves them out.

A fine-tuned transformer and an MLP trained from scratch want learning rates two orders of
magnitude apart: 5e-5 (Hugging Face's default, right for a pretrained transformer) trains a
tabular encoder to chance in a few epochs. So ``training.learning_rate`` and ``training.epochs``
default to values per encoder kind, chosen by a measured sweep over several datasets
(benchmarks/default_settings.py; the evidence is in docs/defaults.md). A model trained from
scratch on a small table also needs more than a few passes over it: when ``epochs`` is left out,
it is raised until training takes at least the kind's ``min_steps`` steps (at most ``MAX_EPOCHS``).

The values are resolved once the data is loaded (the number of training rows decides the epochs)
and written into the study's resolved spec (``spec.yaml``, MLflow params), so a resumed study and
every trial see the same numbers; ``polytask validate`` prints them with where they came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .models import StudySpec


@dataclass(frozen=True)
class EncoderDefaults:
    learning_rate: float
    epochs: int
    min_steps: int  # with epochs left out: raised until epochs x steps per epoch reaches this


DEFAULTS: dict[str, EncoderDefaults] = {  # measured: docs/defaults.md (benchmarks/default_settings.py)
    "pretrained": EncoderDefaults(learning_rate=3e-4, epochs=3, min_steps=0),
    "random": EncoderDefaults(learning_rate=3e-3, epochs=8, min_steps=500),
    "tabular": EncoderDefaults(learning_rate=3e-3, epochs=2, min_steps=150),
    "cnn": EncoderDefaults(learning_rate=1e-2, epochs=4, min_steps=1500),
    "vit": EncoderDefaults(learning_rate=1e-3, epochs=4, min_steps=1500),
}
MAX_EPOCHS = 200  # the minimum-steps rule never asks for more epochs than this


def defaults_for(spec: StudySpec) -> EncoderDefaults:
    return DEFAULTS[spec.encoder.kind]


def steps_per_epoch(spec: StudySpec, train_rows: int) -> int:
    """Training steps in one epoch: ``training.steps_per_epoch``, else one pass over the rows
    (as polytask.data.batches.TrainStream counts it; policy ``all`` takes a batch of every
    task's dataset each step)."""
    if spec.training.steps_per_epoch is not None:
        return spec.training.steps_per_epoch
    every_task = spec.per_task_sources and spec.data.sampling is not None and spec.data.sampling.policy == "all"
    return max(1, train_rows // (spec.training.batch_size * (len(spec.tasks) if every_task else 1)))


def resolve_training(spec: StudySpec, train_rows: int | None) -> tuple[StudySpec, list[str]]:
    """The spec with ``training.learning_rate`` and ``training.epochs`` set, and one line per
    value that was filled in or looks too small, saying why. ``train_rows`` None (the data not
    loaded): the epochs are left to be resolved when they are."""
    training, kind = spec.training, spec.encoder.kind
    defaults = defaults_for(spec)
    update, notes = {}, []
    if training.learning_rate is None:
        update["learning_rate"] = defaults.learning_rate
        notes.append(f"training.learning_rate: {defaults.learning_rate:g}, the default for {kind} encoders (docs/defaults.md)")
    if train_rows is None:
        if training.epochs is None:
            notes.append(f"training.epochs: the default for {kind} encoders, at least {defaults.epochs}, set from the number of training rows once the data is loaded")
        return (spec.model_copy(update={"training": training.model_copy(update=update)}) if update else spec), notes
    per_epoch = steps_per_epoch(spec, train_rows)
    if training.epochs is None:
        epochs = min(MAX_EPOCHS, max(defaults.epochs, math.ceil(defaults.min_steps / per_epoch)))
        update["epochs"] = epochs
        why = f"at least {defaults.min_steps} steps at {per_epoch} per epoch" if epochs > defaults.epochs else f"{per_epoch} steps per epoch"
        notes.append(f"training.epochs: {epochs}, the default for {kind} encoders ({why}; docs/defaults.md)")
    elif training.epochs * per_epoch < defaults.min_steps:
        notes.append(
            f"training.epochs: {training.epochs} x {per_epoch} steps is {training.epochs * per_epoch} steps in all; a {kind} encoder trained "
            f"from scratch usually needs {defaults.min_steps} or more (docs/defaults.md): raise training.epochs, or leave it out"
        )
    if update:
        spec = spec.model_copy(update={"training": training.model_copy(update=update)})
    return spec, notes
