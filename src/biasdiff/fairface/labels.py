"""FairFace class names and the index orders of each published source.

Three sources number FairFace's classes, and they do not agree on the race order:

* The official label CSVs (`fairface_label_{train,val}.csv`, columns file, age, gender, race, service_test) store
  the *names* below, so they need no index mapping. Age "more than 70" is spelled that way in the CSVs
  (Kärkkäinen & Joo, github.com/joojs/fairface README; CSV values as used e.g. in FairFace-derived loaders).
* The Hugging Face Parquet copy `HuggingFaceM4/FairFace` stores class indices. Its dataset card
  (huggingface.co/datasets/HuggingFaceM4/FairFace, README.md @ 81663a46c1a35467a5b8aa68059b4532b6aaac19,
  `dataset_info.features[*].class_label.names`) gives:
  age   0-2, 3-9, 10-19, 20-29, 30-39, 40-49, 50-59, 60-69, more than 70
  gender 0 Male, 1 Female
  race  0 East Asian, 1 Indian, 2 Black, 3 White, 4 Middle Eastern, 5 Latino_Hispanic, 6 Southeast Asian
* FairFace's own classifier (github.com/dchen236/FairFace, predict.py @ 64d012bfb2b6da972739de4dba61cb92e066247c,
  `predidct_age_gender_race`) numbers its 7-race head
  0 White, 1 Black, 2 Latino_Hispanic, 3 East Asian, 4 Southeast Asian, 5 Indian, 6 Middle Eastern,
  gender 0 Male, 1 Female, and age 0..8 as above except that class 8 is printed "70+".

Canonical names in this package are the CSV spellings. `names_from_indices` maps an index column of a given
source to them explicitly; nothing relies on an order being "the usual one".
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from biasdiff.errors import DataError

GENDERS: tuple[str, ...] = ("Male", "Female")
RACES: tuple[str, ...] = (
    "White",
    "Black",
    "Latino_Hispanic",
    "East Asian",
    "Southeast Asian",
    "Indian",
    "Middle Eastern",
)
AGES: tuple[str, ...] = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")

# HuggingFaceM4/FairFace ClassLabel orders (dataset card @ 81663a46c1a35467a5b8aa68059b4532b6aaac19).
HF_ORDER: Mapping[str, tuple[str, ...]] = {
    "age": AGES,
    "gender": ("Male", "Female"),
    "race": ("East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic", "Southeast Asian"),
}

# dchen236/FairFace predict.py @ 64d012bfb2b6da972739de4dba61cb92e066247c (the FairFace classifier's output heads;
# its age class 8 "70+" is the CSV's "more than 70").
CLASSIFIER_ORDER: Mapping[str, tuple[str, ...]] = {
    "age": AGES,
    "gender": ("Male", "Female"),
    "race": ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"),
}

CANONICAL: Mapping[str, tuple[str, ...]] = {"age": AGES, "gender": GENDERS, "race": RACES}
ORDERS: Mapping[str, Mapping[str, tuple[str, ...]]] = {"hf_parquet": HF_ORDER, "classifier": CLASSIFIER_ORDER}


def names_from_indices(indices: Sequence[int] | np.ndarray, column: str, source: str) -> list[str]:
    """Map class indices of `column` ("age", "gender", "race") in `source` ("hf_parquet" or "classifier") to names.

    Raises DataError naming the column and the valid range on an index outside it.
    """
    if source not in ORDERS:
        raise DataError(f"unknown FairFace index source {source!r}; valid: {sorted(ORDERS)}")
    order = ORDERS[source].get(column)
    if order is None:
        raise DataError(f"FairFace column {column!r} has no class indices; valid: {sorted(ORDERS[source])}")
    arr = np.asarray(indices)
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= len(order)):
        bad = arr[(arr < 0) | (arr >= len(order))][:3] if np.issubdtype(arr.dtype, np.number) else arr[:3]
        raise DataError(
            f"FairFace {source} column {column!r} holds index/indices {list(bad)}; valid: 0..{len(order) - 1} "
            f"({', '.join(order)})"
        )
    return [order[int(i)] for i in arr]


def check_names(values: Sequence[object], column: str, where: str) -> None:
    """Raise DataError if a non-missing value of `column` is not a canonical FairFace name."""
    valid = set(CANONICAL[column])
    bad = sorted({str(v) for v in values if isinstance(v, str) and v not in valid})
    if bad:
        raise DataError(f"{where}: column {column!r} has unknown value(s) {bad[:5]}; valid: {list(CANONICAL[column])}")
