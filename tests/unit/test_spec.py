"""Study specs: a good spec resolves with its defaults; each kind of mistake gives one precise
message (field, value, fix) and `polytask validate` exits 2 without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from polytask.cli import app
from polytask.errors import StudyError
from polytask.spec import load_spec, parse_spec, sharing_kwargs, weighting_kwargs
from polytask.strategies.weighting import WEIGHTINGS

REPO = Path(__file__).resolve().parents[2]


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(StudyError) as info:
        parse_spec(raw)
    return [str(p) for p in info.value.problems]


def test_valid_spec_resolves_defaults(make_study):
    spec = parse_spec(make_study())
    assert spec.task_names == ["subjectivity", "sentiment"]
    assert spec.sharing.name == "hard"
    assert spec.tasks[0].resolved_direction == "max"
    assert spec.execution.max_retries == 1
    assert spec.output_dir() == (Path("runs") / "tiny").resolve()


def test_shipped_studies_are_valid():
    for path in (REPO / "studies").glob("*.yaml"):
        assert load_spec(path).name == path.stem


def test_the_readme_example_is_a_valid_spec():
    import re

    example = re.search(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    spec = parse_spec(yaml.safe_load(example))
    assert [c.label for c in spec.candidates] == ["equal", "pcgrad", "tuned"]


def test_unknown_strategy_names_the_field_and_suggests(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "pcgard"}]))
    assert problems == [
        "candidates[0].weighting: unknown weighting strategy 'pcgard'. Did you mean 'pcgrad'? "
        f"Allowed: {', '.join(sorted(WEIGHTINGS))}"
    ]


def test_wrong_number_of_task_weights(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "scalarization", "params": {"weights": [1, 2, 3]}}]))
    assert problems == ["candidates[0].params.weights: 3 value(s) for 2 tasks ['subjectivity', 'sentiment']; give one value per task"]


def test_weights_mapping_must_name_each_task(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "scalarization", "params": {"weights": {"subjectivity": 1, "sentimnt": 2}}}]))
    assert len(problems) == 1
    assert problems[0].startswith("candidates[0].params.weights: names unknown task(s) ['sentimnt'] and lacks task(s) ['sentiment']")


def test_weights_mapping_is_ordered_by_task(make_study):
    spec = parse_spec(make_study(candidates=[{"weighting": "scalarization", "params": {"weights": {"sentiment": 3, "subjectivity": 1}}}]))
    assert weighting_kwargs(spec.candidates[0], spec.task_names)["weights"] == [1.0, 3.0]


@pytest.mark.parametrize("weights, message", [([-1, 2], "must be finite and non-negative"), ([0, 0], "are all zero")])
def test_bad_weight_values(make_study, weights, message):
    problems = problems_of(make_study(candidates=[{"weighting": "scalarization", "params": {"weights": weights}}]))
    assert len(problems) == 1 and message in problems[0] and problems[0].startswith("candidates[0].params.weights:")


def test_unknown_hyperparameter_lists_the_allowed_ones(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "pcgrad", "params": {"grad_spce": "representation"}}]))
    assert problems == [
        "candidates[0].params.grad_spce: 'pcgrad' has no hyperparameter 'grad_spce'. Did you mean 'grad_space'? "
        "Allowed: grad_space (Literal['parameters', 'representation'], default 'parameters')"
    ]


def test_hyperparameter_of_the_wrong_type(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "uncertainty", "params": {"lr": "fast"}}]))
    assert len(problems) == 1
    assert problems[0].startswith("candidates[0].params.lr: 'fast' is not a valid float | None")


def test_unknown_field_suggests_the_right_one(make_study):
    raw = make_study()
    raw["training"]["learning_rat"] = 0.1
    problems = problems_of(raw)
    assert len(problems) == 1
    assert problems[0].startswith("training.learning_rat: unknown field 'learning_rat'. Did you mean 'learning_rate'?")


def test_missing_and_mistyped_fields(make_study):
    raw = make_study()
    del raw["tasks"][0]["label_column"]
    raw["training"]["epochs"] = "three"
    problems = problems_of(raw)
    assert "tasks[0].label_column: required field is missing; add it" in problems
    assert "training.epochs: 'three' is a string, but epochs takes an integer" in problems


def test_search_needs_scalarization_and_excludes_fixed_weights(make_study):
    problems = problems_of(make_study(candidates=[
        {"weighting": "equal", "search": {"trials": 3}},
        {"name": "tuned", "weighting": "scalarization", "params": {"weights": [1, 1]}, "search": {"trials": 3}},
    ]))
    assert problems[0].startswith("candidates[0].search: only a 'scalarization' candidate searches task weights")
    assert problems[1] == "candidates[1].params.weights: fixed weights and a weight search exclude each other; remove one"


def test_duplicate_names(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "equal"}, {"weighting": "equal"}], seeds=[0, 0]))
    assert "candidates[1].name: 'equal' repeats candidates[0]; each must be unique" in problems
    assert "seeds[1]: 0 repeats seeds[0]; each must be unique" in problems


def test_metric_direction_must_agree(make_study):
    raw = make_study()
    raw["tasks"][1]["direction"] = "min"
    assert problems_of(raw) == ["tasks[1].direction: 'min' contradicts accuracy, which is better when higher; remove direction or set it to 'max'"]


def test_unknown_source_kind(make_study):
    raw = make_study()
    raw["data"]["source"] = {"kind": "s3", "train": "x"}
    problems = problems_of(raw)
    assert len(problems) == 1 and problems[0].startswith("data.source.kind: kind must be one of 'builtin', 'files', 'hub'")


def test_relative_file_paths_resolve_against_the_spec(tmp_path, make_study):
    raw = make_study()
    raw["data"]["source"]["train"] = "data/train.csv"
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_spec(path).data.source.train == str(tmp_path / "data" / "train.csv")


# --------------------------------------------------------------------------- the CLI


def validate(tmp_path: Path, raw: dict | str):
    path = tmp_path / "study.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return CliRunner().invoke(app, ["validate", str(path)])


def test_validate_prints_the_resolved_spec(tmp_path, make_study):
    result = validate(tmp_path, make_study())
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["training"]["max_grad_norm"] == 1.0  # a default, made explicit
    assert "valid" in result.stderr and "train 400 rows" in result.stderr


def test_validate_broken_spec_exits_2(tmp_path, make_study):
    result = validate(tmp_path, make_study(candidates=[{"weighting": "pcgard"}]))
    assert result.exit_code == 2
    assert "candidates[0].weighting: unknown weighting strategy 'pcgard'" in result.stderr


def test_validate_yaml_syntax_error_names_the_line(tmp_path):
    result = validate(tmp_path, "name: x\ntasks: [a, b\nencoder: {}\n")
    assert result.exit_code == 2
    assert "line 3" in result.stderr and "not valid YAML" in result.stderr


def test_validate_missing_column_is_found_in_the_data(tmp_path, make_study):
    raw = make_study()
    raw["tasks"][1]["label_column"] = "sentimnet"
    result = validate(tmp_path, raw)
    assert result.exit_code == 2
    assert "tasks[1].label_column: column 'sentimnet' is not in the train split of data.source: files train.csv (columns: review, kind, sentiment)" in result.stderr


def test_validate_label_outside_declared_classes_names_the_row(tmp_path, make_study):
    raw = make_study()
    raw["tasks"][1]["classes"] = ["fresh", "stale"]
    result = validate(tmp_path, raw)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert "data (data.source: files train.csv), train split, column 'sentiment', row" in message
    assert "label 'rotten' is not one of the classes declared in tasks[1].classes ['fresh', 'stale']" in message


def test_any_per_task_hyperparameter_may_be_a_task_mapping(make_study):
    spec = parse_spec(make_study(candidates=[{"weighting": "aligned_mtl", "params": {"preferences": {"sentiment": 2.0, "subjectivity": 1.0}}}]))
    assert weighting_kwargs(spec.candidates[0], spec.task_names) == {"preferences": [1.0, 2.0]}
    problems = problems_of(make_study(candidates=[{"weighting": "famo", "params": {"lower_bounds": {"sentiment": 0.1}}}]))
    assert problems == ["candidates[0].params.lower_bounds: lacks task(s) ['subjectivity']; give one value for each of ['subjectivity', 'sentiment']"]


def test_bad_hyperparameter_value_of_a_new_method_is_named(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "cagrad", "params": {"c": -1}}]))
    assert len(problems) == 1 and problems[0].startswith("candidates[0].params: ") and "c" in problems[0] and "-1" in problems[0]


def test_a_candidate_may_choose_its_sharing(make_study):
    spec = parse_spec(make_study(sharing={"name": "hard", "params": {"hidden": [8]}}, candidates=[{"weighting": "equal"}, {"sharing": {"name": "hard"}}]))
    assert [c.label for c in spec.candidates] == ["equal", "hard-equal"]
    assert spec.sharing_of("equal").params == {"hidden": [8]}  # the study's default
    assert spec.sharing_of("hard-equal").params == {}
    assert sharing_kwargs(spec.sharing, spec.task_names) == {"hidden": [8]}


def test_sharing_hyperparameters_are_checked_like_weighting_ones(make_study):
    problems = problems_of(make_study(candidates=[{"weighting": "equal", "sharing": {"name": "hard", "params": {"hiden": [8]}}}]))
    assert len(problems) == 1
    assert problems[0].startswith("candidates[0].sharing.params.hiden: 'hard' has no hyperparameter 'hiden'. Did you mean 'hidden'? Allowed: hidden")
    problems = problems_of(make_study(sharing={"name": "hard", "params": {"hidden": "wide"}}))
    assert len(problems) == 1 and problems[0].startswith("sharing.params.hidden: 'wide' is not a valid")
    problems = problems_of(make_study(candidates=[{"weighting": "equal", "sharing": {"name": "hrad"}}]))
    assert problems[0].startswith("candidates[0].sharing.name: unknown sharing strategy 'hrad'. Did you mean 'hard'?")


def test_a_gradient_method_needs_shared_parameters(make_study, monkeypatch):
    from polytask.strategies.sharing import SHARINGS, HardSharing

    class Separate(HardSharing):  # stands in for any architecture that shares nothing
        name = "separate_for_tests"
        shares_parameters = False

    monkeypatch.setitem(SHARINGS, Separate.name, Separate)
    problems = problems_of(make_study(candidates=[{"weighting": "equal", "sharing": {"name": Separate.name}}, {"weighting": "pcgrad", "sharing": {"name": Separate.name}}]))
    assert len(problems) == 1
    assert problems[0].startswith(f"candidates[1].weighting: 'pcgrad' combines task gradients on shared parameters, but sharing '{Separate.name}' gives every task its own parameters")
    assert "use a loss weighting (dwa, equal, famo, gls, ...)" in problems[0]


def test_auxiliary_tasks_leave_the_objectives_but_not_every_task_may_be_auxiliary(make_study):
    from polytask.study.search import objective_metrics

    raw = make_study()
    raw["tasks"][1]["auxiliary"] = True
    spec = parse_spec(raw)
    assert [t.name for t in spec.main_tasks] == ["subjectivity"]
    assert objective_metrics(spec) == (["best/val/subjectivity/accuracy"], ["max"])
    raw["tasks"][0]["auxiliary"] = True
    assert problems_of(raw) == ["tasks: every task is auxiliary; mark at least one task auxiliary: false (the study needs something to compare on)"]


SEARCHED = {"name": "tuned", "weighting": "scalarization", "search": {"trials": 4}}


def test_schedulers_and_their_settings(make_study):
    spec = parse_spec(make_study(execution={"scheduler": {"kind": "asha", "grace_period": 1}}))
    assert spec.execution.scheduler.kind == "asha" and spec.execution.scheduler.reduction_factor == 2
    assert parse_spec(make_study(candidates=[SEARCHED], execution={"scheduler": {"kind": "pbt"}})).execution.scheduler.synchronous
    assert problems_of(make_study(execution={"scheduler": {"kind": "hyperband"}}))[0].startswith("execution.scheduler.kind")
    (asha,) = problems_of(make_study(execution={"scheduler": {"kind": "asha", "grace_period": 2}}))
    assert asha.startswith("execution.scheduler.grace_period") and "below the number of epochs" in asha


def test_pbt_needs_one_searched_scalarization_population(make_study):
    (mixed,) = problems_of(make_study(candidates=[{"weighting": "equal"}, SEARCHED], execution={"scheduler": {"kind": "pbt"}}))
    assert mixed.startswith("execution.scheduler.kind") and "exactly one candidate" in mixed and "equal, tuned" in mixed
    (alone,) = problems_of(make_study(candidates=[{**SEARCHED, "search": {"trials": 1}}], execution={"scheduler": {"kind": "pbt"}}))
    assert alone.startswith("candidates[0].search.trials") and "at least 2" in alone
    (interval,) = problems_of(make_study(candidates=[SEARCHED], execution={"scheduler": {"kind": "pbt", "perturbation_interval": 2}}))
    assert interval.startswith("execution.scheduler.perturbation_interval")


def test_optuna_storage_is_an_rdb_url_for_a_searched_candidate(make_study):
    assert parse_spec(make_study(candidates=[SEARCHED], optuna={"storage": "postgresql+psycopg2://u@db/optuna"})).optuna.storage.startswith("postgresql")
    (scheme,) = problems_of(make_study(candidates=[SEARCHED], optuna={"storage": "redis://localhost"}))
    assert scheme.startswith("optuna.storage") and "sqlite:///optuna.db" in scheme
    (unused,) = problems_of(make_study(optuna={"storage": "sqlite:///optuna.db"}))
    assert "nothing is searched" in unused
    (pbt,) = problems_of(make_study(candidates=[SEARCHED], optuna={"storage": "sqlite:///o.db"}, execution={"scheduler": {"kind": "pbt"}}))
    assert "unused with execution.scheduler.kind pbt" in pbt


def test_command_line_overrides_land_in_the_saved_spec(make_study):
    from polytask.spec import with_overrides

    spec = with_overrides(parse_spec(make_study()), storage="s3://bucket/tune", tracking_uri="http://127.0.0.1:5000")
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again.execution.storage == "s3://bucket/tune" and again.tracking.uri == "http://127.0.0.1:5000"


def test_comparison_switches_are_checked_with_the_field_and_the_fix(make_study):
    (inverted,) = problems_of(make_study(comparison={"tuning": {"trials": 2, "learning_rate": [1e-2, 1e-4]}}))
    assert inverted.startswith("comparison.tuning.learning_rate") and "low < high" in inverted
    (budget,) = problems_of(make_study(candidates=[SEARCHED], comparison={"tuning": {"trials": 2, "learning_rate": [1e-4, 1e-2]}}))
    assert budget.startswith("candidates[0].search.trials") and "equal tuning budget" in budget
    (selection,) = problems_of(make_study(comparison={"selection": "last_epoch"}, training={"epochs": 2, "early_stopping": {"patience": 1}}))
    assert selection.startswith("comparison.selection") and "best_epoch" in selection
    (single,) = problems_of(make_study(tasks=[{"name": "sentiment", "label_column": "sentiment"}], comparison={"single_task_baselines": True}))
    assert single.startswith("comparison.single_task_baselines")
    (cache,) = problems_of(make_study(comparison={"baseline_cache": "/tmp/x"}))
    assert cache.startswith("comparison.baseline_cache") and "single_task_baselines: true" in cache
    spec = parse_spec(make_study(comparison={"single_task_baselines": True, "tuning": {"trials": 3, "learning_rate": [1e-4, 1e-2]}}))
    assert spec.tuned("equal") and spec.comparison.tuning.trials == 3
