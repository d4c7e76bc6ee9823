"""Scheduler settings turn into the Ray Tune schedulers they describe."""

from __future__ import annotations

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, PopulationBasedTraining

from polytask.schema import SCORE
from polytask.spec import parse_spec
from polytask.study.schedulers import clip_weights, make_scheduler, pbt_param_space

POPULATION = {"name": "pop", "weighting": "scalarization", "search": {"trials": 3, "low": 0.5, "high": 4.0}}


def test_fifo_is_the_default(make_study):
    assert type(make_scheduler(parse_spec(make_study()))) is FIFOScheduler


def test_asha_judges_val_score_per_epoch_up_to_the_last(make_study):
    raw = make_study(execution={"scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 3}})
    raw["training"]["epochs"] = 9
    asha = make_scheduler(parse_spec(raw))
    assert isinstance(asha, AsyncHyperBandScheduler)
    assert (asha._time_attr, asha._metric, asha._mode, asha._max_t, asha._reduction_factor) == ("epoch", SCORE, "max", 9, 3)
    # rungs at grace_period * reduction_factor^k, up to max_t
    assert sorted(milestone for milestone, _ in asha._brackets[0]._rungs) == [1, 3, 9]


def test_pbt_mutates_the_raw_weights_within_bounds(make_study):
    spec = parse_spec(make_study(candidates=[POPULATION], seeds=[7, 8], execution={"scheduler": {"kind": "pbt", "quantile_fraction": 0.5}}))
    pbt = make_scheduler(spec)
    assert isinstance(pbt, PopulationBasedTraining)
    assert (pbt._metric, pbt._quantile_fraction, pbt._synch) == (SCORE, 0.5, True)
    assert set(pbt._hyperparam_mutations["sampled"]) == {"subjectivity", "sentiment"}
    space = pbt_param_space(spec)
    assert space["search_index"]["grid_search"] == [1, 2, 3]
    assert [space["seed"].func({"search_index": i}) for i in (1, 2, 3)] == [7, 8, 7]  # seeds in turn
    assert {space["sampled"][t].lower for t in spec.task_names} == {0.5}
    assert clip_weights({"sampled": {"a": 6.0, "b": 0.1, "c": 2.0}, "seed": 7}, 0.5, 4.0) == {"sampled": {"a": 4.0, "b": 0.5, "c": 2.0}, "seed": 7}
