"""Each strategy's best model in the MLflow model registry (``comparison.register_models``).

The best trial of a strategy is the one with the highest validation ``val/score`` among its
finished runs (the same validation-only rule as every other selection). Its ``model/``
artifact (the trained parameters, written by polytask.study.trial from the trial's outcome) becomes a new version of the
registered model ``<study>.<strategy>``, tagged with the run's seed and validation score.
"""

from __future__ import annotations

from polytask.ops.records import register_version
from polytask.ops.tracking import Tracking
from polytask.results.comparison import Comparison, trained_to_the_end
from polytask.schema import BEST_SCORE, MODEL_ARTIFACT, SEARCH, STUDY_TAG, TRIAL, tag
from polytask.spec import StudySpec


def register_best_models(spec: StudySpec, comparison: Comparison, tracking: Tracking) -> dict[str, str]:
    """Register every strategy's best model; returns registered name -> version."""
    trials = trained_to_the_end(comparison.role(TRIAL))
    done = trials[trials["phase"] != SEARCH] if len(trials) else trials
    versions = {}
    for label in dict.fromkeys(r.candidate for r in comparison.rows if r.kind == "strategy"):
        runs = done[done["candidate"] == label] if len(done) else done
        if not len(runs) or BEST_SCORE not in runs:
            continue
        best = runs.loc[runs[BEST_SCORE].idxmax()]
        name = f"{spec.name}.{label}"
        tags = {tag(STUDY_TAG): spec.name, tag("seed"): str(best["seed"]), tag("val_score"): f"{best[BEST_SCORE]:.6f}"}
        description = f"polytask study {spec.name}: the best {label} model by validation score"
        versions[name] = register_version(tracking, name, description, best["run_id"], MODEL_ARTIFACT[0], tags)
    return versions
