"""Progress in the terminal while a study runs: one line per trial event, with a running count.

Plain lines rather than a live table, so the same output reads well in a terminal, a CI log and
``kubectl logs``.
"""

from __future__ import annotations

import time

from ray.tune import Callback
from rich.console import Console

from polytask.schema import EPOCH, reached_the_end, run_name
from polytask.study.search import config_weights


class StudyProgress(Callback):
    def __init__(self, total: int, primary: list[str], epochs: int, console: Console, task_names: list[str]) -> None:
        self.total = total
        self.task_names = task_names
        self.names: dict[str, str] = {}  # Tune trial id -> run name
        self.primary = primary  # val/<task>/<metric> keys shown after each epoch
        self.epochs = epochs
        self.console = console
        self.started = time.monotonic()
        self.finished = self.failed = 0

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment state; a console holds locks.
        return {k: v for k, v in self.__dict__.items() if k != "console"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, console=Console())

    def _name(self, trial) -> str:
        """The trial's name when it first started: PBT later gives a trial a copy of another
        member's config (its seed and index too), but it is still the same trial."""
        if trial.trial_id not in self.names:
            config = trial.config
            config = config.get("trial", config)  # single-task runs grid-search whole configs (polytask.study.single_task)
            self.names[trial.trial_id] = run_name(config.get("candidate"), config.get("seed"), config.get("search_index"))
        return self.names[trial.trial_id]

    def _clock(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        return f"[dim]{elapsed // 60:d}:{elapsed % 60:02d}[/dim] [{self.finished + self.failed}/{self.total}]"

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        weights = config_weights(trial.config, self.task_names)
        extra = f" weights {[round(w, 2) for w in weights]}" if weights else ""
        # a trial starts again after a pause (PBT) or with another member's model and new weights
        verb = "continued" if trial.trial_id in self.names else "started "
        self.console.print(f"{self._clock()} {verb} {self._name(trial)}{extra}")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if "epoch" not in result:
            return
        shown = "  ".join(f"{k.split('/', 1)[1]}={result[k]:.3f}" for k in self.primary if k in result)
        self.console.print(
            f"{self._clock()} {self._name(trial)} epoch {int(result['epoch'])}/{self.epochs}  {shown}  "
            f"[dim]{result.get('cost/step_time_ms', 0):.0f} ms/step[/dim]"
        )

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.finished += 1
        result = trial.last_result or {}
        if result.get("diverged"):
            self.console.print(f"{self._clock()} [yellow]diverged[/yellow] {self._name(trial)} at step {int(result.get('diverged_step', -1))}")
        elif EPOCH in result and not reached_the_end(result, self.epochs):
            self.console.print(f"{self._clock()} [yellow]stopped[/yellow] {self._name(trial)} by the scheduler after epoch {int(result[EPOCH])}")
        else:
            self.console.print(f"{self._clock()} [green]finished[/green] {self._name(trial)}")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        # trial.checkpoint is the last checkpoint Tune registered; without one the retry starts over
        where = "from its last checkpoint" if trial.checkpoint else "from the start"
        self.console.print(f"{self._clock()} [yellow]retrying[/yellow] {self._name(trial)} {where}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.failed += 1
        error = trial.get_error()
        reason = str(error).strip().splitlines()[-1] if error else "unknown error"
        self.console.print(f"{self._clock()} [red]failed[/red] {self._name(trial)}: {reason}")
