"""docs/your-own-data.md stays true to the code: its specs parse, and the fixed penguins spec is
the one whose report docs/results/penguins/ holds. (The messages it quotes are those of the data
checks, each asserted on a real file in tests/unit/test_data_checks.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from polytask.spec import parse_spec

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = (DOCS / "your-own-data.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)


def test_every_spec_on_the_page_is_yaml_and_the_fixed_ones_parse():
    specs = [yaml.safe_load(block) for block in BLOCKS]
    assert [s["name"] for s in specs] == ["penguins", "penguins", "debates"]
    parse_spec(specs[1])  # the fixed penguins spec: valid as written


def test_the_fixed_penguins_spec_is_the_published_one():
    assert BLOCKS[1] == (DOCS / "results" / "penguins" / "penguins.yaml").read_text()


def test_the_first_penguins_spec_has_the_slips_the_page_fixes():
    first, fixed = (yaml.safe_load(block) for block in BLOCKS[:2])
    assert first["tasks"][0]["label_column"] == "species" and fixed["tasks"][0]["label_column"] == "Species"
    assert "missing" not in first["data"] and fixed["data"]["missing"] == "impute"
    assert "type" not in first["tasks"][2] and fixed["tasks"][2]["type"] == "regression"
    assert "learning_rate" not in fixed.get("training", {}) and "epochs" not in fixed.get("training", {})  # the defaults at work
