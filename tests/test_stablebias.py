"""StableBias: shipped tables, word-vector projection, text-encoder bias, Parquet image loader, CLIP zero-shot
labels with a tiny random CLIPModel (no download), regression numbers against scipy."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from gensim.models import KeyedVectors
from PIL import Image
from scipy import stats

from biasdiff.errors import DataError
from biasdiff.stablebias import images as sb_images
from biasdiff.stablebias.regression import relate
from biasdiff.stablebias.resources import load_crosscheck, load_professions, load_published_output, profession_key
from biasdiff.stablebias.stage import relation_table
from biasdiff.stablebias.textbias import TextEncoder, prompts_for, text_bias
from biasdiff.stablebias.wordbias import profession_projections, profession_words
from tiny_models import tiny_clip, tiny_clip_tokenizer


# ---------------------------------------------------------------- tiny CLIP built from config (no files, no hub)
def _png(colour, size=24) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(sum(colour))
    arr = (rng.random((size, size, 3)) * 60 + np.array(colour) * 0.7).clip(0, 255).astype(np.uint8)
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _write_dataset(path, rows, n_files=2):
    schema = pa.schema([("profession", pa.string()), ("model", pa.string()),
                        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("seed", pa.int64())])
    path.mkdir(parents=True, exist_ok=True)
    for k, chunk in enumerate(np.array_split(np.arange(len(rows)), n_files)):
        recs = [rows[i] for i in chunk]
        pq.write_table(pa.Table.from_pylist(recs, schema=schema), path / f"train-{k:05d}.parquet", row_group_size=3)


def _rows():
    rows = []
    for model in ("SD_14", "SD_2"):
        for prof, n in (("nurse", 3), ("truck_driver", 2)):
            for i in range(n):
                rows.append({"profession": prof, "model": model, "image": {"bytes": _png((40 * i, 100, 200)), "path": None},
                             "seed": i})
    return rows


# ---------------------------------------------------------------- shipped tables
def test_shipped_professions_and_published_table():
    prof = load_professions()
    assert len(prof) == 150 and prof["key"].is_unique
    assert {"CEO", "IT specialist", "nurse"} <= set(prof["profession"])
    pub = load_published_output(("sd15_baseline",))
    assert len(pub) == 150 and pub["frac_woman"].between(0, 1).all()
    assert pub.loc[pub["key"] == "ceo", "model"].item() == "runwayml/stable-diffusion-v1-5"
    nurse = pub[pub["key"] == "nurse"].iloc[0]
    assert nurse["frac_woman"] == nurse["n_woman"] / nurse["n_images"]
    cross = load_crosscheck()
    assert set(cross["model"]) == {"Dall-E 2", "SD v.1.4", "SD v2", "BLS"} and cross["fd_sd15_frac_woman"].notna().all()
    with pytest.raises(DataError, match="valid"):
        load_published_output(("sd21",))


# ---------------------------------------------------------------- word vectors
def test_word_projection_multiword_mean_and_oov():
    kv = KeyedVectors(2)
    kv.add_vectors(["nurse", "truck", "driver", "it"], np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0], [1.0, 1.0]], np.float32))
    direction = np.array([1.0, 0.0])
    table = profession_projections(kv, ["nurse", "truck driver", "IT specialist", "stocker"], direction)
    got = dict(zip(table["profession"], table["word_projection"]))
    assert got["nurse"] == pytest.approx(1.0)
    mean = (np.array([0.0, 1.0]) + np.array([1.0, 1.0]) / np.sqrt(2)) / 2  # mean of UNIT vectors
    assert got["truck driver"] == pytest.approx(mean[0] / np.linalg.norm(mean))
    assert got["IT specialist"] == pytest.approx(1 / np.sqrt(2))  # "specialist" OOV: left out of the mean
    assert table.set_index("profession").loc["IT specialist", "oov_words"] == ["specialist"]
    assert np.isnan(got["stocker"])  # no word in vocabulary -> NaN, never a guess
    assert profession_words("air-conditioning installer") == ["air", "conditioning", "installer"]


# ---------------------------------------------------------------- text encoder bias (seed's cosine ratio)
def test_text_bias_cosines_match_manual_and_prompts():
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = tiny_clip_tokenizer()
    torch.manual_seed(0)
    model = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=77,
                                         eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)).eval()
    enc = TextEncoder(tokenizer=tok, model=model, pooling="flatten", device=torch.device("cpu"))
    table = text_bias(enc, ["nurse", "truck driver"], batch_size=1)
    assert prompts_for("nurse") == ("a photo of a nurse", "a photo of a nurse, man", "a photo of a nurse, woman")
    with torch.no_grad():
        ids = tok(list(prompts_for("truck driver")), padding="max_length", max_length=77, return_tensors="pt").input_ids
        e = model(input_ids=ids).last_hidden_state.flatten(1).double().numpy()
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    row = table.set_index("profession").loc["truck driver"]
    assert row["cos_man"] == pytest.approx(cos(e[0], e[1]), rel=1e-5)
    assert row["cos_woman"] == pytest.approx(cos(e[0], e[2]), rel=1e-5)
    assert row["text_ratio"] == pytest.approx(row["cos_woman"] / row["cos_man"])
    assert row["seed_ratio"] == pytest.approx(1 / row["text_ratio"])


# ---------------------------------------------------------------- Parquet image datasets
def test_parquet_loader_streams_groups_and_caps(tmp_path):
    _write_dataset(tmp_path / "ds", _rows())
    got = {}
    for model, prof, imgs in sb_images.iter_images(tmp_path / "ds", max_per_group=2, batch_rows=2):
        got[(model, prof)] = got.get((model, prof), 0) + len(imgs)
        assert all(isinstance(i, Image.Image) and i.size == (24, 24) for i in imgs)
    assert got == {("SD_14", "nurse"): 2, ("SD_14", "truck driver"): 2, ("SD_2", "nurse"): 2, ("SD_2", "truck driver"): 2}


def test_parquet_loader_rejects_bad_input(tmp_path):
    with pytest.raises(DataError, match="expected a Parquet file"):
        sb_images.dataset_files(tmp_path)
    pq.write_table(pa.table({"profession": ["nurse"], "image": [b"x"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) \['model'\]"):
        sb_images.dataset_files(tmp_path)


def test_clip_zero_shot_is_argmax_over_the_right_prompts(tmp_path):
    model, processor = tiny_clip()
    imgs = [Image.open(io.BytesIO(_png((i * 50, 20, 90)))).convert("RGB") for i in range(5)]
    probs = sb_images.clip_gender_probs(model, processor, imgs, "truck driver")
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1)
    with torch.no_grad():
        text = processor.tokenizer(["a photo of a truck driver, man", "a photo of a truck driver, woman"], padding=True,
                                   return_tensors="pt")
        t = model.get_text_features(**text)
        t = getattr(t, "pooler_output", t)
        v = model.get_image_features(pixel_values=processor.image_processor(imgs, return_tensors="pt")["pixel_values"])
        v = getattr(v, "pooler_output", v)
        t, v = t / t.norm(dim=-1, keepdim=True), v / v.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * v @ t.T
    assert np.allclose(probs, logits.softmax(1).numpy(), atol=1e-5)
    assert (probs.argmax(1) == logits.argmax(1).numpy()).all()


def test_label_dataset_counts_and_reports_profession_without_images(tmp_path):
    _write_dataset(tmp_path / "ds", _rows())
    model, processor = tiny_clip()
    prof = pd.DataFrame({"profession": ["nurse", "truck driver", "CEO"], "key": ["nurse", "truck driver", "ceo"]})
    table = sb_images.label_dataset(tmp_path / "ds", model, processor, prof)
    assert len(table) == 6 and set(table["model"]) == {"SD_14", "SD_2"}
    ceo = table[table["key"] == "ceo"]
    assert (ceo["n_images"] == 0).all() and ceo["frac_woman"].isna().all() and (ceo["status"] == "no images").all()
    nurse = table[(table["key"] == "nurse") & (table["model"] == "SD_2")].iloc[0]
    assert nurse["n_images"] == 3 and nurse["frac_woman"] == nurse["n_woman"] / 3
    # The counts are the argmax of the per-image zero-shot probabilities.
    imgs = [i for m, p, b in sb_images.iter_images(tmp_path / "ds") if (m, p) == ("SD_2", "nurse") for i in b]
    expected = int((sb_images.clip_gender_probs(model, processor, imgs, "nurse").argmax(1) == 1).sum())
    assert nurse["n_woman"] == expected


# ---------------------------------------------------------------- regression
def test_relate_matches_scipy_and_drops_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.3 * x + 0.5 + rng.normal(scale=0.2, size=40)
    x[3] = np.nan
    got = relate(x, y)
    ok = np.isfinite(x)
    ref = stats.linregress(x[ok], y[ok])
    assert got["n"] == 39 and got["n_dropped"] == 1
    assert got["slope"] == pytest.approx(ref.slope) and got["intercept"] == pytest.approx(ref.intercept)
    assert got["r"] == pytest.approx(ref.rvalue) and got["r2"] == pytest.approx(ref.rvalue**2)
    assert got["p"] == pytest.approx(ref.pvalue)
    assert got["spearman_rho"] == pytest.approx(stats.spearmanr(x[ok], y[ok]).statistic)
    exact = relate([0, 1, 2, 3], [1, 3, 5, 7])
    assert exact["slope"] == pytest.approx(2) and exact["intercept"] == pytest.approx(1) and exact["r2"] == pytest.approx(1)
    assert np.isnan(relate([1, 2], [3, 4])["r"])


def test_relation_table_per_model_with_no_image_rows():
    emb = pd.DataFrame({"key": list("abcde"), "profession": list("abcde"), "word_projection": [-2, -1, 0, 1, 2.0]})
    out = pd.DataFrame({"model": "m", "condition": "images", "source": "clip_zero_shot", "profession": list("abcde"),
                        "key": list("abcde"), "n_images": [4, 4, 4, 4, 0], "n_woman": [0, 1, 2, 3, 0],
                        "frac_woman": [0, 0.25, 0.5, 0.75, np.nan], "status": ["ok"] * 4 + ["no images"]})
    rel = relation_table(emb, out).iloc[0]
    assert rel["n"] == 4 and rel["n_no_images"] == 1 and rel["slope"] == pytest.approx(0.25) and rel["r"] == pytest.approx(1)


def test_profession_key_normalises_sources():
    assert profession_key("IT_specialist") == profession_key("IT specialist") == "it specialist"
