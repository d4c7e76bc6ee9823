"""The analysis of benchmarks/default_settings.py on made-up runs: normalised gains, the share
of runs clearly above trivial, the learning-rate choice and its tie rule, the plateau rule of the
minimum steps. No training: the script itself runs the sweep (docs/defaults.md)."""

from __future__ import annotations

import pytest

from benchmarks import default_settings as ds
from polytask.spec import parse_spec


def run(
    lr: float,
    seed: int,
    value: float | None,
    trivial: float = 0.5,
    direction: str = "max",
    dataset: str = "d",
    task: str = "t",
    kind: str = "tabular",
    phase: str = "grid",
    **extra,
) -> dict:
    setting = ds.Setting(kind, dataset, None, None, (1,))
    cell = ds.Cell(phase, setting, lr, 1, seed)
    return {
        "key": cell.key,
        "phase": phase,
        "kind": kind,
        "dataset": dataset,
        "size": setting.size,
        "learning_rate": lr,
        "epochs": 1,
        "seed": seed,
        "budget": extra.get("budget"),
        "metrics": {task: value},
        "trivial": {task: trivial},
        "tasks": [{"name": task, "metric": "accuracy" if direction == "max" else "mae", "direction": direction}],
        "diverged": None if value is not None else "diverged",
    }


def test_normalised_gain_is_one_at_the_best_rate_zero_at_trivial_and_cut_at_minus_one():
    rows = [run(1e-3, s, v) for s, v in ((0, 0.9), (1, 0.9))] + [run(1e-4, s, 0.5) for s in (0, 1)] + [run(1e-2, s, 0.0) for s in (0, 1)]
    table = ds.cell_table(rows, "learning_rate")
    assert table[("d", "t", 1e-3)]["norm"] == pytest.approx(1.0)
    assert table[("d", "t", 1e-4)]["norm"] == pytest.approx(0.0)
    assert table[("d", "t", 1e-2)]["norm"] == -1.0  # -1.25, cut


def test_lower_is_better_metrics_are_oriented_and_diverged_runs_count_as_trivial():
    rows = [run(1e-3, s, 5.0, trivial=10.0, direction="min") for s in (0, 1)] + [
        run(1e-2, 0, None, trivial=10.0, direction="min"),
        run(1e-2, 1, 7.5, trivial=10.0, direction="min"),
    ]
    table = ds.cell_table(rows, "learning_rate")
    assert table[("d", "t", 1e-3)]["norm"] == pytest.approx(1.0)
    assert table[("d", "t", 1e-2)]["norm"] == pytest.approx(0.25)  # gains 0 (diverged) and 2.5, over 5
    assert table[("d", "t", 1e-2)]["diverged"] == 1


def test_clearly_above_trivial_needs_one_percent_and_two_standard_deviations():
    steady = [run(1e-3, s, v) for s, v in ((0, 0.60), (1, 0.61))]  # gains 0.10, 0.11 > 2 * 0.007
    noisy = [run(1e-2, s, v) for s, v in ((0, 0.52), (1, 0.70))]  # std 0.127: 0.02 and 0.20 < 0.25
    tiny = [run(1e-4, s, 0.503) for s in (0, 1)]  # 0.003 < 1% of 0.5
    table = ds.cell_table(steady + noisy + tiny, "learning_rate")
    assert [table[("d", "t", lr)]["above"] for lr in (1e-3, 1e-2, 1e-4)] == [2, 0, 0]


def test_a_task_no_rate_lifts_clearly_above_trivial_is_left_out_of_the_means():
    rows = [run(lr, s, 0.5 + (0.001 if lr == 1e-3 else 0.0), task="flat") for lr in (1e-4, 1e-3) for s in (0, 1)]
    rows += [run(lr, s, 0.9 if lr == 1e-3 else 0.7, task="easy") for lr in (1e-4, 1e-3) for s in (0, 1)]
    table = ds.cell_table(rows, "learning_rate")
    assert table[("d", "flat", 1e-3)]["norm"] is None
    stats = ds.summary(table, [1e-4, 1e-3])
    assert stats[1e-4]["mean_norm"] == pytest.approx(0.5) and stats[1e-4]["n"] == 1


def results_with(tmp_path, rows: list[dict]) -> ds.Results:
    results = ds.Results(tmp_path / "results.json")
    results.cells = {r["key"]: r for r in rows}
    return results


def plan_of(kind: str, datasets: list[str], rates: tuple[float, ...]) -> ds.Plan:
    return ds.Plan([ds.Setting(kind, d, None, None, (1,)) for d in datasets], [], [], {kind: rates}, (0, 1), (50, 150))


def test_the_learning_rate_with_the_highest_mean_normalised_gain_is_chosen(tmp_path):
    values = {1e-4: 0.6, 1e-3: 0.9, 1e-2: 0.8}
    rows = [run(lr, s, v) for lr, v in values.items() for s in (0, 1)]
    assert ds.best_learning_rate(results_with(tmp_path, rows), "tabular", plan_of("tabular", ["d"], tuple(values))) == 1e-3


def test_ties_go_to_the_rate_with_more_runs_clearly_above_trivial(tmp_path):
    # 1e-3 has the higher mean on task a but is unsteady there (one run within 2 std of trivial);
    # 1e-2 is within the tie margin and clearly above trivial on every run
    # (one task per dataset: a results file keys its runs by dataset, rate and seed)
    rows = [run(1e-3, 0, 0.68, dataset="d1", task="a"), run(1e-3, 1, 0.82, dataset="d1", task="a")]
    rows += [run(1e-2, 0, 0.74, dataset="d1", task="a"), run(1e-2, 1, 0.75, dataset="d1", task="a")]
    rows += [run(lr, s, 0.8, dataset="d2", task="b") for lr in (1e-3, 1e-2) for s in (0, 1)]
    stats = ds.summary(ds.cell_table(rows, "learning_rate"), [1e-3, 1e-2])
    assert 0 < stats[1e-3]["mean_norm"] - stats[1e-2]["mean_norm"] <= ds.TIE and stats[1e-3]["above"] < stats[1e-2]["above"]
    assert ds.best_learning_rate(results_with(tmp_path, rows), "tabular", plan_of("tabular", ["d1", "d2"], (1e-3, 1e-2))) == 1e-2


def test_the_minimum_steps_are_where_the_gain_stops_growing():
    stats = {50: {"mean_norm": 0.4}, 150: {"mean_norm": 0.985}, 500: {"mean_norm": 1.0}, 1500: {"mean_norm": 0.99}}
    assert ds.enough(stats, [50, 150, 500, 1500]) == 150


def test_cells_resume_by_key_and_run_again_when_their_settings_change(tmp_path):
    setting = ds.Setting("tabular", "census_income", 320, 2000, (1,))
    cell = ds.Cell("grid", setting, 1e-3, 1, 0)
    results = ds.Results(tmp_path / "results.json")
    results.cells[cell.key] = {"fingerprint": ds.spec_dict(setting, 1e-3, 1, 0)[1], "phase": "grid"}
    results.save()
    again = ds.Results(tmp_path / "results.json")
    assert again.done(cell)
    assert not again.done(ds.Cell("grid", setting, 1e-3, 2, 0))  # another number of epochs: another cell
    again.cells[cell.key]["fingerprint"] = "stale"
    assert not again.done(cell)


@pytest.mark.parametrize("kind", ds.KINDS)
def test_every_builtin_setting_of_the_full_sweep_is_a_valid_spec(kind):
    plan = ds.full_plan()
    settings = [s for s in plan.grid + plan.budget + plan.epochs if s.kind == kind and s.dataset not in ("penguins", "multi_mnist")]
    for setting in settings:
        spec = parse_spec(ds.spec_dict(setting, plan.learning_rates[kind][0], 3, 0)[0])
        assert spec.training.learning_rate == plan.learning_rates[kind][0] and spec.training.epochs == 3
        assert spec.encoder.kind == kind and [c.weighting for c in spec.candidates] == ["equal"]
