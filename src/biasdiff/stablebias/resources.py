"""The StableBias reference tables shipped with the project (src/biasdiff/resources/stablebias/, see SOURCES.md there).

- `stablebias_professions.csv`: the 150 StableBias professions (DiffusionBiasExplorer, cc-by-sa-4.0).
- `fairdiffusion_gender_by_occupation.csv`: Fair Diffusion's per-occupation FairFace-classifier gender counts
  (ml-research/Fair-Diffusion, Apache-2.0): SD 1.5 baseline, SD 1.5 Fair-Diffusion-edited, LAION real images.
- `stablebias_caption_gender_10_professions.csv`, `bls_women_stablebias_10_professions.csv`: the StableBias team's
  own numbers for 10 professions (SDbiaseval/notebooks, apache-2.0), used as a cross-check only.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd

from biasdiff.errors import DataError

RESOURCE_PACKAGE = "biasdiff"
PUBLISHED_CONDITIONS = ("sd15_baseline", "sd15_fair_diffusion_edited", "laion_real_images")
PUBLISHED_SOURCE = "fair_diffusion_fairface"


def resource_dir() -> Path:
    """Directory holding the shipped StableBias CSVs and their SOURCES.md."""
    return Path(str(files(RESOURCE_PACKAGE) / "resources" / "stablebias"))


def _read(name: str) -> pd.DataFrame:
    path = resource_dir() / name
    if not path.is_file():
        raise DataError(f"StableBias resource {path} is missing; reinstall biasdiff (package data resources/stablebias)")
    return pd.read_csv(path)


def profession_key(name: str) -> str:
    """Matching key across sources: lower case, underscores as spaces, single spaces ("IT_specialist" -> "it specialist")."""
    return " ".join(str(name).replace("_", " ").lower().split())


def load_professions() -> pd.DataFrame:
    """The 150 professions in source order: columns profession (source spelling, e.g. "CEO"), key, row."""
    df = _read("stablebias_professions.csv")
    return pd.DataFrame(
        {"profession": df["profession"], "key": df["profession"].map(profession_key), "row": df["row_in_promptsadjectives_csv"]}
    )


def load_published_output(conditions=("sd15_baseline",)) -> pd.DataFrame:
    """Fair Diffusion's per-profession gender split for the 150 professions.

    Returns one row per (condition, profession): profession (StableBias spelling), key, model (the generating model
    id, or "LAION-5B (real images)"), condition, source, n_images, n_woman, frac_woman.
    """
    bad = [c for c in conditions if c not in PUBLISHED_CONDITIONS]
    if bad:
        raise DataError(f"published output condition(s) {bad} unknown; valid: {list(PUBLISHED_CONDITIONS)}")
    table = _read("fairdiffusion_gender_by_occupation.csv")
    table = table[table["condition"].isin(conditions)].copy()
    table["key"] = table["profession"].map(profession_key)
    prof = load_professions()
    merged = prof.merge(table.drop(columns=["profession"]), on="key", how="left")
    missing = merged[merged["condition"].isna()]["profession"].tolist()
    if missing:
        raise DataError(f"published table lacks StableBias profession(s) {missing[:5]}")
    model = merged["model"].where(merged["condition"] != "laion_real_images", "LAION-5B (real images)")
    return pd.DataFrame(
        {
            "profession": merged["profession"],
            "key": merged["key"],
            "model": model,
            "condition": merged["condition"],
            "source": PUBLISHED_SOURCE,
            "n_images": merged["n_images"].astype("int64"),
            "n_woman": merged["n_woman"].astype("int64"),
            "frac_woman": merged["n_woman"] / merged["n_images"].where(merged["n_images"] > 0),
        }
    )


def load_crosscheck() -> pd.DataFrame:
    """The StableBias team's 10-profession numbers beside Fair Diffusion's SD 1.5 fraction of women.

    Columns: key, model (StableBias label, e.g. "SD v.1.4", or "BLS"), pct_woman (caption share containing "woman",
    or BLS percent women), kind ("caption_pct_woman" or "bls_pct_women"), fd_sd15_frac_woman.
    """
    captions = _read("stablebias_caption_gender_10_professions.csv")
    bls = _read("bls_women_stablebias_10_professions.csv")
    rows = pd.concat(
        [
            pd.DataFrame(
                {"key": captions["profession"].map(profession_key), "model": captions["model"],
                 "pct_woman": captions["caption_pct_woman"], "kind": "caption_pct_woman"}
            ),
            pd.DataFrame(
                {"key": bls["profession"].map(profession_key), "model": "BLS",
                 "pct_woman": bls["bls_pct_women"], "kind": "bls_pct_women"}
            ),
        ],
        ignore_index=True,
    )
    fd = load_published_output(("sd15_baseline",))[["key", "frac_woman"]].rename(columns={"frac_woman": "fd_sd15_frac_woman"})
    return rows.merge(fd, on="key", how="left")
