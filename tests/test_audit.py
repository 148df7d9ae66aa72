"""Audit: proportion statistics, training P(female | word), the attribute classifier on procedural people, and the
per-word sample audit end to end on files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from biasdiff.audit.classifier import (
    AttributeClassifier,
    check_gender_accuracy,
    classifier_splits,
    train_attribute_classifier,
)
from biasdiff.audit.sample_audit import (
    SAMPLE_AUDIT_COLUMNS,
    audit_images,
    embedding_projections,
    run_audit,
)
from biasdiff.stats import binomial_pvalue, gender_gap, kl_to_uniform, wilson_interval
from biasdiff.audit.training import training_attribute_table
from biasdiff.errors import DataError
from biasdiff.seeds import rng_for
from biasdiff.synth.procedural import RenderSettings, render_person

SIZE = 16
PROMPTS = {  # the config's prompts: (gender, occupation, words)
    "male_nurse": ("male", "nurse", ["man", "nurse", "person"]),
    "female_nurse": ("female", "nurse", ["woman", "nurse", "person"]),
    "male_phil": ("male", "philosopher", ["man", "philosopher", "person"]),
    "female_phil": ("female", "philosopher", ["woman", "philosopher", "person"]),
    "man": ("male", "none", ["man", "person", "man"]),
    "woman": ("female", "none", ["woman", "person", "woman"]),
}
CLF_SETTINGS = dict(epochs=12, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=3, seed=0, width=8, noise_std=0.1,
                    members=3, bag_fraction=0.75)


def render(prompt: str, index: int, seed: int = 0) -> np.ndarray:
    """One procedural person of `prompt` at SIZE px (rendered at 64 px, box-downsampled)."""
    gender, occupation, _ = PROMPTS[prompt]
    img = render_person(rng_for(seed, prompt, index), gender, occupation, RenderSettings(size=32, supersample=2))
    return np.asarray(Image.fromarray(img).resize((SIZE, SIZE), Image.Resampling.BOX))


def make_manifest(counts: dict[str, int], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A manifest-shaped table (array order) and its uint8 (N, SIZE, SIZE, 3) images, all in the train split."""
    rows, images = [], []
    for prompt, n in counts.items():
        gender, occupation, words = PROMPTS[prompt]
        for i in range(n):
            rows.append(dict(array_index=len(rows), prompt=prompt, index=i, words=list(words), gender=gender,
                             occupation=occupation, split="train"))
            images.append(render(prompt, i, seed))
    return pd.DataFrame(rows), np.stack(images)


# ---------------------------------------------------------------- statistics


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(0.27753, abs=1e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(81, 263) == pytest.approx((0.25531, 0.36627), abs=1e-4)  # Newcombe (1998), 81/263
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def _exact_two_sided(k: int, n: int, p: float) -> float:
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    return min(1.0, sum(q for q in pmf if q <= pmf[k] * (1 + 1e-7)))


@pytest.mark.parametrize("k,n,p", [(7, 10, 0.5), (3, 15, 0.1), (40, 100, 0.75), (12, 40, 0.25)])
def test_binomial_pvalue_matches_exact_sum(k, n, p):
    assert binomial_pvalue(k, n, p) == pytest.approx(_exact_two_sided(k, n, p), rel=1e-9)


def test_binomial_pvalue_known_and_degenerate():
    assert binomial_pvalue(7, 10, 0.5) == pytest.approx(0.34375)
    assert binomial_pvalue(0, 10, 0.0) == 1.0 and binomial_pvalue(1, 10, 0.0) == 0.0
    assert math.isnan(binomial_pvalue(3, 10, float("nan"))) and math.isnan(binomial_pvalue(0, 0, 0.5))


def test_gap_and_kl():
    assert gender_gap(0.5) == 0 and gender_gap(0.0) == 1 and gender_gap(0.75) == pytest.approx(0.5)
    assert kl_to_uniform([0.5, 0.5]) == pytest.approx(0.0)
    assert kl_to_uniform([1.0, 0.0]) == pytest.approx(math.log(2))
    assert kl_to_uniform([0.75, 0.25]) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    with pytest.raises(ValueError):
        kl_to_uniform([0.7, 0.7])


# ---------------------------------------------------------------- training distribution


def test_training_fraction_counts_repeated_words():
    manifest, _ = make_manifest({"man": 1, "woman": 1, "male_nurse": 1, "female_nurse": 3}, seed=0)
    manifest = pd.concat([manifest, manifest.assign(split="val", array_index=manifest.array_index + 6)])
    table = training_attribute_table(manifest).set_index("word")
    # man: the man image counts twice, male_nurse once; nurse: 3 female of 4; person: 4 female of 6 images
    assert table.loc["man", "n_pairs"] == 3 and table.loc["man", "n_images"] == 2
    assert table.loc["man", "train_frac_female"] == 0
    assert table.loc["nurse", "train_frac_female"] == pytest.approx(0.75)
    assert table.loc["person", "train_frac_female"] == pytest.approx(4 / 6)
    assert table.loc["woman", "n_pairs"] == 2 + 3 and table.loc["woman", "train_frac_female"] == 1
    # null = every (image, word) pair of the train split: 6 images x 3 slots, 3 + 3*3 + ... female slots
    assert table.loc["null", "n_pairs"] == 18 and table.loc["null", "train_frac_female"] == pytest.approx(12 / 18)
    assert table.loc["nurse", "train_frac_occupation_nurse"] == 1


# ---------------------------------------------------------------- classifier


def training_set() -> tuple[np.ndarray, dict, list[str]]:
    """6 prompts x 40 procedural images (train 24, val 6, test 10 per prompt)."""
    images, gender, occupation, roles = [], [], [], []
    for prompt, (g, o, _) in PROMPTS.items():
        for i in range(40):
            images.append(render(prompt, i, seed=1))
            gender.append(g)
            occupation.append(o)
            roles.append("train" if i < 24 else "val" if i < 30 else "test")
    return np.stack(images), {"gender": gender, "occupation": occupation}, roles


@pytest.fixture(scope="module")
def classifier():
    """A 3-member ensemble (each on 75% of the train split), trained once."""
    return train_attribute_classifier(*training_set(), CLF_SETTINGS, progress=False)


def test_classifier_high_heldout_accuracy_on_procedural_people(classifier):
    clf, metrics = classifier
    assert metrics["n"] == {"train": 144, "val": 36, "test": 60}
    assert metrics["members"] == 3 == len(clf.models) and len(metrics["gender"]["member_test_accuracy"]) == 3
    assert len(metrics["epochs_run"]) == 3 and {r["member"] for r in metrics["history"]} == {0, 1, 2}
    assert metrics["gender"]["test_accuracy"] >= 0.9
    assert metrics["occupation"]["test_accuracy"] >= 0.9
    conf = np.array(metrics["gender"]["test_confusion"])
    assert conf.shape == (2, 2) and conf.sum() == 60 and np.trace(conf) / 60 == metrics["gender"]["test_accuracy"]
    assert metrics["gender"]["labels"] == ["female", "male"]
    assert metrics["occupation"]["labels"] == ["none", "nurse", "philosopher"]


def test_classifier_save_load_roundtrip(classifier, tmp_path):
    clf, _ = classifier
    images = np.stack([render("female_nurse", i, seed=5) for i in range(6)])
    clf.save(tmp_path / "clf")
    again = AttributeClassifier.load(tmp_path / "clf")
    np.testing.assert_allclose(again.member_proba(images)["gender"], clf.member_proba(images)["gender"], atol=1e-6)
    with pytest.raises(DataError, match="train_attribute_classifier"):
        AttributeClassifier.load(tmp_path / "missing")
    meta = json.loads((tmp_path / "clf" / "classifier.json").read_text())
    del meta["members"]  # a directory written before ensembles: told to retrain, not a state-dict traceback
    (tmp_path / "clf" / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="no 'members'.*train_attribute_classifier"):
        AttributeClassifier.load(tmp_path / "clf")


def test_ensemble_members_differ_and_vote_by_mean_probability(classifier):
    clf, _ = classifier
    images = np.stack([render(p, i, seed=6) for p in ("man", "woman") for i in range(4)])
    members = clf.member_proba(images)
    assert members["gender"].shape == (3, 8, 2) and members["occupation"].shape == (3, 8, 3)
    assert not np.allclose(members["gender"][0], members["gender"][1])  # own seed and bootstrap share each
    mean = clf.predict_proba(images)
    np.testing.assert_allclose(mean["gender"], members["gender"].mean(0))
    assert list(clf.predict(images)["gender"]) == list(np.array(["female", "male"])[mean["gender"].argmax(1)])


def test_single_member_is_the_default():
    settings = {k: v for k, v in CLF_SETTINGS.items() if k not in ("members", "bag_fraction")} | {"epochs": 2}
    clf, metrics = train_attribute_classifier(*training_set(), settings, progress=False)
    assert len(clf.models) == 1 and metrics["members"] == 1
    assert metrics["gender"]["member_test_accuracy"] == [metrics["gender"]["test_accuracy"]]


def test_bootstrap_indices_are_seeded_shares_without_replacement():
    from biasdiff.audit.classifier import bootstrap_indices

    a = bootstrap_indices(100, 0.5, seed=3)
    assert len(a) == 50 == len(set(a.tolist())) and a.tolist() == sorted(a.tolist()) and int(a.max()) < 100
    assert torch.equal(a, bootstrap_indices(100, 0.5, seed=3)) and not torch.equal(a, bootstrap_indices(100, 0.5, 4))
    assert torch.equal(bootstrap_indices(7, 1.0, seed=3), torch.arange(7))
    assert len(bootstrap_indices(3, 0.01, seed=0)) == 1


def test_member_spread_counts_disputed_samples():
    from biasdiff.audit.sample_audit import member_spread

    labels = np.array([["female", "female", "male", "male"],
                       ["female", "male", "male", "male"],
                       ["female", "female", "male", "female"]])
    spread = member_spread(labels)
    assert spread == {"classifier_members": 3, "members_frac_female_min": 0.25, "members_frac_female_max": 0.75,
                      "frac_disputed": 0.5}
    assert math.isnan(member_spread(np.zeros((3, 0), dtype=object))["frac_disputed"])


def test_classifier_splits_are_seeded_and_complete():
    split = np.array(["train"] * 10 + ["val"] * 40)
    keys = [f"p/{i}" for i in range(50)]
    roles = classifier_splits(split, keys, seed=0, test_fraction=0.5)
    assert set(roles[:10]) == {"train"} and {"val", "test"} <= set(roles[10:])
    assert (roles == classifier_splits(split, keys, seed=0, test_fraction=0.5)).all()
    with pytest.raises(DataError, match="val_fraction"):
        classifier_splits(np.array(["train"] * 5), keys[:5], seed=0, test_fraction=0.5)


def test_gender_floor_fails_loudly_with_numbers():
    metrics = {"gender": {"test_accuracy": 0.61}, "n": {"test": 40}}
    with pytest.raises(DataError, match=r"0\.610 \(n=40\) is below audit.gender_accuracy_floor 0\.900"):
        check_gender_accuracy(metrics, 0.9)
    check_gender_accuracy(metrics, 0.6)


# ---------------------------------------------------------------- the audit


@pytest.mark.parametrize("counts", [
    {p: 12 for p in PROMPTS},  # balanced: every neutral word 0.5
    {"male_nurse": 6, "female_nurse": 18, "man": 8, "woman": 8},  # imbalanced nurses: P(female | nurse) = 0.75
])
def test_audit_of_training_images_recovers_true_proportions(classifier, counts):
    clf, metrics = classifier
    manifest, images = make_manifest(counts, seed=2)  # images the classifier never saw
    training = training_attribute_table(manifest)
    pairs = manifest.explode("words")
    by_word = {w: images[g["array_index"].to_numpy()] for w, g in pairs.groupby("words")}
    by_word["null"] = images[pairs["array_index"].to_numpy()]
    audit, labels = audit_images(by_word, clf, training, {}, metrics)
    audit = audit.set_index("word")
    assert len(labels) == sum(len(v) for v in by_word.values()) and labels["classifier_female"].dtype == bool
    assert audit["frac_female_corrected"].isna().all()  # no instrument rates given: no correction
    for word, row in audit.iterrows():
        assert row.ci_low <= row.train_frac_female <= row.ci_high, (word, row.frac_female, row.train_frac_female)
        assert row.p_value > 0.01
    if counts.get("female_nurse") == 18:
        assert audit.loc["nurse", "train_frac_female"] == pytest.approx(0.75)
        assert audit.loc["nurse", "frac_female"] > 0.6
    assert audit.loc["man", "frac_female"] <= 0.1 and audit.loc["woman", "frac_female"] >= 0.9


def _write_inputs(tmp_path, clf, metrics, floor_ok=True):
    manifest, _ = make_manifest({p: 4 for p in PROMPTS}, seed=3)
    manifest.to_parquet(tmp_path / "images.parquet")
    clf.save(tmp_path / "clf")
    m = dict(metrics)
    if not floor_ok:
        m = json.loads(json.dumps(metrics))
        m["gender"]["test_accuracy"] = 0.5
    (tmp_path / "metrics.json").write_text(json.dumps(m))
    pd.DataFrame({
        "space": ["original"] * 2 + ["projected"] * 2,
        "word": ["nurse", "man"] * 2,
        "gender_projection": [0.31, -0.4, 0.2, -0.3],
    }).to_parquet(tmp_path / "bias.parquet")
    samples = {}
    for word, prompt in (("nurse", "female_nurse"), ("man", "man"), ("null", "woman")):
        np.save(tmp_path / f"{word}.npy", np.stack([render(prompt, i, seed=4) for i in range(10)]))
        pd.DataFrame({"index": range(10), "sampler": "ddim", "steps": 50, "guidance_scale": 3.0, "use_ema": True}
                     ).to_parquet(tmp_path / f"{word}.parquet")
        samples[word] = str(tmp_path / f"{word}.npy")
    outs = {k: tmp_path / "audit" / name for k, name in (
        ("table", "sample_bias.parquet"), ("csv", "sample_bias.csv"), ("markdown", "sample_bias.md"),
        ("bars", "bars.png"), ("scatter", "scatter.png"), ("labels", "sample_labels.parquet"))}
    # the instrument is perfect on SDEdited images at 0.3 in every context, and poor at 0.5 (must not be used)
    rows = [{"context": c, "gender": g, "strength": st, "n": 50, "n_female": (50 if g == "female" else 0) if st == 0.3
             else 25} for c in ("none", "nurse", "philosopher") for g in ("female", "male") for st in (0.3, 0.5)]
    pd.DataFrame(rows).to_parquet(tmp_path / "sdedit.parquet")
    kwargs = dict(samples=samples, manifest=tmp_path / "images.parquet", classifier_dir=tmp_path / "clf",
                  classifier_metrics=tmp_path / "metrics.json", embedding_bias=tmp_path / "bias.parquet",
                  settings={"gender_accuracy_floor": 0.8, "batch_size": 64, "correction_strength": 0.3,
                            "correction_resamples": 200}, outputs=outs, sdedit=tmp_path / "sdedit.parquet")
    return kwargs, outs


def test_run_audit_writes_table_figures_and_headline(classifier, tmp_path):
    clf, metrics = classifier
    kwargs, outs = _write_inputs(tmp_path, clf, metrics)
    audit = run_audit(**kwargs)
    assert all(p.is_file() for p in outs.values())
    table = pd.read_parquet(outs["table"]).set_index("word")
    assert list(table.reset_index().columns[: len(SAMPLE_AUDIT_COLUMNS)]) == SAMPLE_AUDIT_COLUMNS
    assert {"frac_occupation_nurse", "train_frac_occupation_nurse"} <= set(table.columns)
    assert table.loc["nurse", "embedding_projection"] == pytest.approx(0.2)  # the projected (JL) space
    assert math.isnan(table.loc["null", "embedding_projection"])
    assert table.loc["nurse", "train_frac_female"] == pytest.approx(0.5)
    assert table.loc["nurse", "frac_female"] == 1.0 and table.loc["nurse", "p_value"] < 0.01  # only women drawn
    assert table.loc["nurse", "frac_occupation_nurse"] >= 0.9
    assert (table["classifier_gender_accuracy"] == metrics["gender"]["test_accuracy"]).all()
    assert (table["classifier_members"] == 3).all()
    assert table.loc["nurse", "members_frac_female_min"] <= 1.0 == table.loc["nurse", "members_frac_female_max"]
    assert 0 <= table.loc["nurse", "frac_disputed"] <= 1 - table.loc["nurse", "members_frac_female_min"]
    md = outs["markdown"].read_text()
    assert "| nurse | 10 | 1.000 |" in md and "(3 members), held-out accuracy: gender" in md
    assert "Samples: ddim-50, guidance scale 3, EMA weights." in md and (table["steps"] == 50).all()
    assert len(audit) == 3
    # "null" was drawn as women only (P = 1.0, not 0.5 ± 0.1): the model is marked uncalibrated everywhere
    assert md.startswith("## Sample audit (uncalibrated model)") and "**UNCALIBRATED**" in md and "null 1.000" in md
    assert not table["calibrated"].any()
    assert "calibrated" in pd.read_csv(outs["csv"]).columns
    # a perfect instrument corrects nothing; the headline shows both and says what the interval covers
    assert (table["frac_female_corrected"] == table["frac_female"]).all()
    assert "Corrected: P(female)" in md and "strength 0.3 (none 1.00/1.00" in md and "not between-model" in md
    labels = pd.read_parquet(outs["labels"])
    assert labels.groupby("word").size().to_dict() == {"man": 10, "null": 10, "nurse": 10}
    assert labels.loc[labels["word"] == "nurse", "classifier_female"].all()


def test_corrected_columns_invert_the_context_error_rates():
    """31% read female in a context where the instrument finds 80% of women and calls 10% of men female: by hand,
    (0.31 + 0.9 - 1) / (0.8 + 0.9 - 1) = 0.3 women."""
    from biasdiff.audit.sample_audit import corrected_columns

    gender = np.array(["female"] * 31 + ["male"] * 69)
    r = corrected_columns(gender, np.array(["nurse"] * 100), {"nurse": (80, 100, 90, 100)}, resamples=500, seed=0)
    assert r["frac_female_corrected"] == pytest.approx(0.3)
    assert r["corrected_ci_low"] < 0.3 < r["corrected_ci_high"]
    # samples in a context without rates (a held-out split too small to hold both genders there): no correction
    none = corrected_columns(gender, np.array(["philosopher"] * 100), {"nurse": (80, 100, 90, 100)}, 100, 0)
    assert all(math.isnan(v) for v in none.values())


def test_instrument_rates_read_one_strength_and_refuse_a_missing_one(tmp_path):
    from biasdiff.audit.sample_audit import instrument_rates

    pd.DataFrame([{"context": "nurse", "gender": "female", "strength": 0.3, "n": 40, "n_female": 36},
                  {"context": "nurse", "gender": "male", "strength": 0.3, "n": 50, "n_female": 5}]
                 ).to_parquet(tmp_path / "s.parquet")
    assert instrument_rates(tmp_path / "s.parquet", 0.3) == {"nurse": (36, 40, 45, 50)}
    with pytest.raises(DataError, match="no SDEdit strength 0.5"):
        instrument_rates(tmp_path / "s.parquet", 0.5)
    with pytest.raises(DataError, match="readout_sdedit"):
        instrument_rates(tmp_path / "missing.parquet", 0.3)
    pd.DataFrame([{"context": "nurse", "gender": "female", "strength": 0.3, "n": 40, "n_female": 36},
                  {"context": "nurse", "gender": "male", "strength": 0.3, "n": 50, "n_female": 5},
                  {"context": "philosopher", "gender": "female", "strength": 0.3, "n": 3, "n_female": 3}]
                 ).to_parquet(tmp_path / "one_gender.parquet")
    assert instrument_rates(tmp_path / "one_gender.parquet", 0.3) == {"nurse": (36, 40, 45, 50)}  # no men: no rates


def _calibration_rows(woman, man, null, disputed=0.02):
    return pd.DataFrame({"word": ["man", "woman", "nurse", "null"], "frac_female": [man, woman, 0.6, null],
                         "frac_disputed": [disputed, 0.0, 0.0, 0.0]})


@pytest.mark.parametrize("woman,man,null,disputed,failed", [
    (0.95, 0.01, 0.50, 0.02, []),
    (0.90, 0.05, 0.40, 0.10, []),  # every floor met exactly
    (0.65, 0.005, 0.27, 0.33, ["woman", "null", "disputed"]),  # the default model of issue 13
    (0.95, 0.06, 0.61, 0.02, ["man", "null"]),
])
def test_calibration_marks_a_model_that_cannot_draw_what_it_is_told(woman, man, null, disputed, failed):
    from biasdiff.audit.sample_audit import calibration

    status = calibration(_calibration_rows(woman, man, null, disputed))
    assert status["calibrated"] == (not failed)
    assert len(status["failures"]) == len(failed)
    for key, failure in zip(failed, status["failures"]):
        assert key in failure
    assert status["line"].startswith(f"Model calibration: woman {woman:.3f}")
    assert ("UNCALIBRATED" in status["line"]) == bool(failed)


def test_calibration_floors_come_from_config_and_missing_words_are_skipped():
    from biasdiff.audit.sample_audit import calibration

    rows = _calibration_rows(0.8, 0.0, 0.5)
    assert not calibration(rows)["calibrated"]
    assert calibration(rows, {"female_min": 0.75})["calibrated"]
    assert calibration(rows[rows["word"] != "woman"])["calibrated"]


def test_run_audit_refuses_below_floor_and_writes_nothing(classifier, tmp_path):
    clf, metrics = classifier
    kwargs, outs = _write_inputs(tmp_path, clf, metrics, floor_ok=False)
    with pytest.raises(DataError, match="below audit.gender_accuracy_floor"):
        run_audit(**kwargs)
    assert not any(p.exists() for p in outs.values())


def test_embedding_projection_prefers_transformed_space(tmp_path):
    pd.DataFrame({"space": ["projected", "transformed"], "word": ["nurse", "nurse"], "gender_projection": [0.3, 0.0]}
                 ).to_parquet(tmp_path / "b.parquet")
    assert embedding_projections(tmp_path / "b.parquet") == {"nurse": 0.0}
    with pytest.raises(DataError, match="embed_words"):
        embedding_projections(tmp_path / "none.parquet")


CONTROLS = {  # preset -> (planted occupation, planted gender): written from the issue, not read from the files
    "control_nurse_female": ("nurse", "female"), "control_nurse_male": ("nurse", "male"),
    "control_philosopher_female": ("philosopher", "female"), "control_philosopher_male": ("philosopher", "male"),
}


@pytest.mark.parametrize("preset", sorted(CONTROLS))
def test_control_presets_change_only_the_planted_counts(preset):
    """Each positive control is the default with 9 images of one gender for every one of the other in one
    occupation (the same total), nothing else changed, and its own results directory."""
    from pathlib import Path

    import yaml
    from snakemake.utils import update_config

    from biasdiff.config import validate_config

    occupation, planted = CONTROLS[preset]
    root = Path(__file__).resolve().parents[1]
    default = validate_config(yaml.safe_load((root / "config.yaml").read_text()))
    config = yaml.safe_load((root / "config.yaml").read_text())
    update_config(config, yaml.safe_load((root / f"configs/{preset}.yaml").read_text()))
    config = validate_config(config)
    counts = {p: s["count"] for p, s in config["prompts"].items()}
    attrs = {p: s["attributes"] for p, s in config["prompts"].items()}
    cell = {(a["occupation"], a["gender"]): counts[p] for p, a in attrs.items()}
    other = "male" if planted == "female" else "female"
    assert cell[(occupation, planted)] == 9 * cell[(occupation, other)]
    assert config["results"] == f"results/{preset}" != default["results"]
    default_counts = {p: s["count"] for p, s in default["prompts"].items()}
    planted_prompts = [p for p, a in attrs.items() if a["occupation"] == occupation]
    assert sum(counts[p] for p in planted_prompts) == sum(default_counts[p] for p in planted_prompts)
    assert {p: n for p, n in counts.items() if p not in planted_prompts} == {
        p: n for p, n in default_counts.items() if p not in planted_prompts}
    # besides: the controls switch the experiment design off (one model each), so their models keep no EMA snapshots
    assert config["experiment"]["enabled"] is False and config["train"]["snapshot_steps"] == []
    assert {**config["train"], "snapshot_steps": None} == {**default["train"], "snapshot_steps": None}
    skip = ("prompts", "results", "experiment", "train")
    assert {k: v for k, v in config.items() if k not in skip} == {k: v for k, v in default.items() if k not in skip}
    rows = [dict(array_index=i, words=list(config["prompts"][p]["words"]), gender=attrs[p]["gender"],
                 occupation=attrs[p]["occupation"], split="train")
            for i, p in enumerate(p for p, n in counts.items() for _ in range(n // 200))]
    table = training_attribute_table(pd.DataFrame(rows)).set_index("word")
    assert table.loc[occupation, "train_frac_female"] == pytest.approx(0.9 if planted == "female" else 0.1)
    assert table.loc["man", "train_frac_female"] == 0 and table.loc["woman", "train_frac_female"] == 1


@pytest.mark.parametrize("val_loss, best, progress", [
    (0.50, 0.60, True),     # a real gain
    (0.59, 0.60, False),    # < 5% relative
    (0.0030, 0.0036, False),  # 17% relative but 0.6 millinats: a perfect classifier getting more confident
    (0.0020, 0.0036, True),
    (0.70, float("inf"), True),  # the first epoch always counts
])
def test_early_stopping_progress_needs_relative_and_absolute_gain(val_loss, best, progress):
    from biasdiff.audit.classifier import made_progress

    assert made_progress(val_loss, best) is progress


def test_a_corrupt_or_incomplete_rates_table_is_one_line_naming_the_rule(tmp_path):
    from biasdiff.audit.sample_audit import instrument_rates

    (tmp_path / "s.parquet").write_text("garbage")
    with pytest.raises(DataError, match=r"not a readable Parquet table .*forcerun readout_sdedit"):
        instrument_rates(tmp_path / "s.parquet", 0.3)
    pd.DataFrame({"context": ["nurse"], "gender": ["female"]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"lacks columns \['strength', 'n', 'n_female'\].*readout_sdedit"):
        instrument_rates(tmp_path / "t.parquet", 0.3)
