"""Per-task LoRA adapters (peft) in an encoder's trainable blocks.

LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022) keeps a
linear layer's weight ``W`` frozen and learns a low-rank update of it:
``h = W x + (alpha / r) B A x`` with ``A: r x d_in`` and ``B: d_out x r``. ``B`` starts at zero
(peft's default initialisation), so an adapted layer starts as the base layer.

:func:`add_lora_adapters` gives every task its own ``(A, B)`` in every ``nn.Linear`` of the given
modules (the peft adapter name is the task name); :func:`active_adapter` makes one task's
adapters the ones in use. Outside any :func:`active_adapter` context the adapters are disabled
and the modules compute their base function.

Two things peft does that multi-task training must undo:

* ``set_adapter`` and ``enable_adapters`` set ``requires_grad=False`` on every adapter that is
  not active. Switching tasks inside a training step would then freeze the other tasks'
  adapters, and the optimizer (and the gradient engine, which lists trainable parameters) would
  skip them. Both functions here restore ``requires_grad`` as it was.
* ``inject_adapter_in_model`` leaves a ``peft_config`` attribute on the module it injects into
  and warns on the next injection that it finds one; we inject one adapter per task, so we
  drop the attribute and silence that warning.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn


def add_lora_adapters(modules: Sequence[nn.Module], tasks: Sequence[str], rank: int, alpha: float, dropout: float) -> None:
    """One LoRA adapter per task (named after it) in every ``nn.Linear`` inside ``modules``.

    Base weights inside ``modules`` are frozen; every adapter parameter is trainable; the adapters
    start disabled (see :func:`active_adapter`)."""
    tasks = list(tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct and non-empty, got {tasks}")
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if lora_layers(modules):
        raise ValueError("these modules already have LoRA adapters")
    adapted = False
    for module in modules:
        if isinstance(module, nn.Linear):
            raise ValueError("a bare nn.Linear cannot be adapted in place; wrap it in a module (nn.Sequential)")
        names = [name for name, child in module.named_modules() if isinstance(child, nn.Linear)]
        if not names:
            continue
        adapted = True
        module.requires_grad_(False)
        # a string target is matched with re.fullmatch against each module name: exactly these layers
        target = "|".join(re.escape(name) for name in names)
        for task in tasks:
            config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target, bias="none", init_lora_weights=True)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                inject_adapter_in_model(config, module, adapter_name=task)
        if "peft_config" in vars(module):
            del module.peft_config
    if not adapted:
        raise ValueError("the encoder's trainable stages hold no linear layer to adapt: give a text encoder trainable_layers > 0, or a tabular one hidden layers")
    for layer in lora_layers(modules):
        layer.enable_adapters(False)
        for p in _adapter_parameters(layer):
            p.requires_grad_(True)


def lora_layers(modules: Sequence[nn.Module]) -> list[LoraLayer]:
    """Every LoRA layer inside ``modules``, each once."""
    seen: dict[int, LoraLayer] = {}
    for module in modules:
        for child in module.modules():
            if isinstance(child, LoraLayer):
                seen.setdefault(id(child), child)
    return list(seen.values())


@contextmanager
def active_adapter(modules: Sequence[nn.Module], task: str) -> Iterator[None]:
    """Within the context, every LoRA layer inside ``modules`` uses ``task``'s adapter only;
    after it, each layer is back to its previous state (active adapter, enabled or not, and
    ``requires_grad`` of every adapter parameter)."""
    layers = lora_layers(modules)
    if not layers:
        raise ValueError("no LoRA adapters in these modules (call add_lora_adapters first)")
    if any(task not in layer.lora_A for layer in layers):
        known = sorted({name for layer in layers for name in layer.lora_A})
        raise KeyError(f"no adapter named '{task}' in every LoRA layer; the adapters are {known}")
    saved = [(layer, list(layer.active_adapters), layer.disable_adapters) for layer in layers]
    grads = [(p, p.requires_grad) for layer in layers for p in _adapter_parameters(layer)]
    try:
        for layer in layers:
            layer.enable_adapters(True)
            layer.set_adapter(task)
        _restore(grads)
        yield
    finally:
        for layer, active, disabled in saved:
            layer.set_adapter(active)
            if disabled:
                layer.enable_adapters(False)
        _restore(grads)


def _adapter_parameters(layer: LoraLayer) -> Iterator[nn.Parameter]:
    for name in layer.adapter_layer_names:
        yield from getattr(layer, name).parameters()


def _restore(grads: list[tuple[nn.Parameter, bool]]) -> None:
    for p, requires_grad in grads:
        p.requires_grad_(requires_grad)
