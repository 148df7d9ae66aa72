"""Benchmark: gender accuracy against network evaluations per image, ScoreDecomp vs the ELBO diffusion classifier.

On held-out (val) images of a trained own DDPM. ScoreDecomp runs once over all timesteps × draws; every subset's
accuracy and exact cost ((K + 1) · |t| · draws evaluations per image, K = 2 gender words + the null base) comes from
that run (the shared noise makes a subset identical to a separate run). ELBO runs once per budget (evenly spaced
timesteps per class, Li et al. 2023). Evaluation counts are the score model's own counters.

    .venv/bin/python benchmarks/bench_scoredecomp.py --results results --model default --n-images 200

Prints a Markdown table (for benchmarks/RESULTS.md, "## ScoreDecomp") and writes it with the raw numbers to
--out (Parquet).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from biasdiff.stats import wilson_interval
from biasdiff.artifacts.conditioning import load_conditioning
from biasdiff.scores import WordDDPMScore, elbo_classify, score_decomp
from biasdiff.scoredecomp.stage import held_out_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", help="results directory holding models/, manifest/, embeddings/")
    ap.add_argument("--model", default="default")
    ap.add_argument("--n-images", type=int, default=200)
    ap.add_argument("--timesteps", type=int, nargs="+", default=[10, 50, 100, 200, 400])
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--variants", nargs="+", default=["simplex", "cosine", "neg_l2", "pca_simplex"])
    ap.add_argument("--elbo-budgets", type=int, nargs="+", default=[1, 5, 25, 100, 250])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/benchmarks/scoredecomp.parquet", help="raw table (git-ignored)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    root = Path(args.results)
    score = WordDDPMScore.from_model_dir(root / "models" / args.model,
                                         load_conditioning(root / "embeddings" / "conditioning.parquet"),
                                         device="cpu", dtype="float32", batch_size=args.batch_size)
    rows, images, seeds = held_out_images(root / "manifest" / "images.parquet", root / "manifest" / "images.npy",
                                          "val", args.n_images, args.seed)
    truth = (rows["gender"].to_numpy() == "female").astype(int)  # attribute 0 = man, 1 = woman
    x0 = score.encode(images)
    print(f"{len(rows)} val images ({int(truth.sum())} female), model {args.model}, image {tuple(x0.shape[1:])}")

    records = []

    def record(method, variant, timesteps, draws, evals, labels, seconds):
        correct = int((labels == truth).sum())
        lo, hi = wilson_interval(correct, len(truth))
        records.append({"method": method, "variant": variant, "timesteps": timesteps, "n_draws": draws,
                        "evals_per_image": float(evals), "accuracy": correct / len(truth), "ci_low": lo,
                        "ci_high": hi, "n": len(truth), "seconds": seconds})
        print(f"  {method:11s} {variant:11s} t={timesteps:18s} draws={draws} evals/image={evals:6.0f} "
              f"accuracy={correct / len(truth):.3f} [{lo:.3f}, {hi:.3f}]", flush=True)

    start, before = time.perf_counter(), score.evals
    res = score_decomp(score, x0, seeds, ["man", "woman"], base="", timesteps=args.timesteps, n_draws=args.draws,
                       variants=args.variants, progress=True)
    sd_seconds = time.perf_counter() - start
    full_evals = (score.evals - before) / len(rows)
    per_eval = sd_seconds / max(full_evals, 1)
    nt = len(args.timesteps)
    subsets = [([i], 1) for i in range(nt)] + [([i], args.draws) for i in range(nt)]
    subsets += [(list(range(nt)), 1), (list(range(nt)), args.draws)]
    for variant, result in res.items():
        assert result.evals_per_image == full_evals
        for t_index, r in subsets:
            evals = result.evals_for(t_index, r)
            record("scoredecomp", variant, ",".join(str(args.timesteps[i]) for i in t_index), r, evals,
                   result.labels(t_index, r), per_eval * evals)
    for budget in args.elbo_budgets:
        start, before = time.perf_counter(), score.evals
        out = elbo_classify(score, x0, seeds, ["man", "woman"], stages=[(budget, 1)], progress=True)
        assert score.evals - before == int(out.evals.sum())
        record("elbo", "unpruned", f"even:{budget}", 1, out.evals.mean(), out.labels, time.perf_counter() - start)

    table = pd.DataFrame(records)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out, index=False)
    show = table.copy()
    show["accuracy (95% CI)"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
                                 zip(show["accuracy"], show["ci_low"], show["ci_high"])]
    # ScoreDecomp subsets: measured seconds per evaluation of the full run × the subset's evaluations
    show["seconds (all images)"] = show["seconds"].round(1)
    cols = ["method", "variant", "timesteps", "n_draws", "evals_per_image", "accuracy (95% CI)", "seconds (all images)"]
    print(show[cols].to_markdown(index=False) if _has_tabulate() else show[cols].to_string(index=False))
    best_elbo = table[table["method"] == "elbo"].sort_values("evals_per_image")
    cheap = table[(table["method"] == "scoredecomp") & (table["evals_per_image"] == 3)]
    if not cheap.empty and not best_elbo.empty:
        top = cheap.sort_values("accuracy").iloc[-1]
        print(f"\nbest 3-evaluation ScoreDecomp: {top['variant']} at t={top['timesteps']}: accuracy {top['accuracy']:.3f}; "
              f"ELBO accuracies by evals/image: "
              + ", ".join(f"{e:.0f}: {a:.3f}" for e, a in zip(best_elbo["evals_per_image"], best_elbo["accuracy"])))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
