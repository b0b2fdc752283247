"""Chapter 8's corpus measurements, recorded: ``python -m mha.course.real_heads_results``.

Writes ``mha/results/real_heads.json`` (a few minutes on one core), which the
chapter loads: relative-offset profiles over the corpus, the three lenses
against their baselines and lexical controls, pronoun-to-antecedent attention,
and head ablation on the paraphrase and pronoun tasks (single heads, pruning
curves, and the rank correlation of the two importance rankings).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from mha import pretrained
from mha.course import ablation, real_heads
from mha.course.corpus import frame_sentence, load_corpus

__all__ = ["RESULTS", "main", "load_results"]

RESULTS = Path(__file__).resolve().parents[1] / "results" / "real_heads.json"
COMMAND = "python -m mha.course.real_heads_results"
# The article's word in each lens's slots, for the paired lexical control.
LENS_WORDS = {
    "relationships": {"verb": "trust", "A": "he", "C": "he"},
    "emotion": {"noun": "secret"},
    "chronology": {"link": "because"},
}
PRUNE_STEPS = (0, 12, 24, 36, 48, 54, 60, 66, 72)
N_BOOT, N_RANDOM_ORDERS = 2000, 3


def _r(a, digits: int = 6):
    return np.round(np.asarray(a, dtype=float), digits).tolist()


def _t_summary(x: np.ndarray) -> dict:
    """Mean, 95% t-interval and Wilcoxon signed-rank p over axis 0, per head."""
    test = stats.ttest_1samp(x, 0.0, axis=0)
    ci = test.confidence_interval(0.95)
    p = stats.wilcoxon(x.reshape(len(x), -1), axis=0).pvalue.reshape(x.shape[1:])
    return {"mean": _r(x.mean(0)), "ci_low": _r(ci.low), "ci_high": _r(ci.high),
            "p_wilcoxon": _r(p, 10), "n": len(x)}  # fmt: skip


def offsets(tok: pretrained.WordPieceTokenizer, enc: pretrained.BertEncoder, corpus: dict) -> dict:
    pairs = corpus["paraphrase_pairs"]
    texts = list(dict.fromkeys(corpus["general"] + [p["a"] for p in pairs] + [p["b"] for p in pairs]
                               + [i["he"] for i in corpus["pronoun_pairs"]]))  # fmt: skip
    profile = real_heads.offset_profile(real_heads.attention_maps(tok, enc, texts))
    return {"columns": [*map(str, real_heads.OFFSETS), "[CLS]", "[SEP]"],
            "profile": _r(profile), "n_sentences": len(texts)}  # fmt: skip


def lenses(
    tok: pretrained.WordPieceTokenizer, enc: pretrained.BertEncoder, corpus: dict, article: str
) -> dict:
    frames = corpus["frames"]
    base = real_heads.attention_maps(tok, enc, [f["text"] for f in frames])
    art = real_heads.lens_scores(real_heads.attention_maps(tok, enc, [article])[0])
    out = {}
    for lens, words in LENS_WORDS.items():
        dist = np.stack([real_heads.lens_scores(m)[lens] for m in base])  # (frames, L, H)
        keep = [i for i, f in enumerate(frames) if any(f[s] != w for s, w in words.items())]
        swapped = [frame_sentence({**frames[i], **words}) for i in keep]
        maps = real_heads.attention_maps(tok, enc, swapped)
        with_word = np.stack([real_heads.lens_scores(m)[lens] for m in maps])
        out[lens] = {
            "article": _r(art[lens]),
            "frames_mean": _r(dist.mean(0)), "frames_sd": _r(dist.std(0, ddof=1)),
            "frames_p95": _r(np.percentile(dist, 95, axis=0)),
            "article_percentile": _r((dist < art[lens]).mean(0) * 100, 2),
            "n_frames": len(frames),
            "control": _t_summary(with_word - dist[keep]),  # article's word minus another word
        }  # fmt: skip
    return out


def pronoun_attention(
    tok: pretrained.WordPieceTokenizer, enc: pretrained.BertEncoder, corpus: dict
) -> dict:
    items = corpus["pronoun_pairs"]
    he = real_heads.attention_maps(tok, enc, [i["he"] for i in items])
    she = real_heads.attention_maps(tok, enc, [i["she"] for i in items])
    return _t_summary(real_heads.pronoun_scores(tok, he, she, items))


def _importances(full, single, labels, pair_idx, item_idx):
    """Importance of every head for both tasks on a (re)sample of pairs and items."""
    lab = labels[pair_idx]
    para = np.array([ablation.margin(full["pair_cos"][pair_idx], lab)
                     - ablation.margin(s["pair_cos"][pair_idx], lab) for s in single])  # fmt: skip
    pron = np.array([full["pronoun"][item_idx].mean() - s["pronoun"][item_idx].mean()
                     for s in single])  # fmt: skip
    return para, pron


def _bootstrap(full, single, labels, rng) -> dict:
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_items = len(full["pronoun"])
    rhos, abs_rhos, paras, prons = [], [], [], []
    for _ in range(N_BOOT):  # pairs resampled within each label, items resampled
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        para, pron = _importances(full, single, labels, idx, rng.choice(n_items, n_items))
        rhos.append(stats.spearmanr(para, pron).statistic)
        abs_rhos.append(stats.spearmanr(np.abs(para), np.abs(pron)).statistic)
        paras.append(para)
        prons.append(pron)
    lo, hi = np.percentile(rhos, [2.5, 97.5])
    return {"rho_ci": [float(lo), float(hi)],
            "abs_rho_ci": _r(np.percentile(abs_rhos, [2.5, 97.5])),
            "para_ci": _r(np.percentile(paras, [2.5, 97.5], axis=0)),
            "pron_ci": _r(np.percentile(prons, [2.5, 97.5], axis=0))}  # fmt: skip


def ablate(
    tok: pretrained.WordPieceTokenizer, enc: pretrained.BertEncoder, corpus: dict, seed: int = 0
) -> dict:
    tasks = ablation.Tasks(tok, corpus)
    full = ablation.task_scores(enc, tasks)
    single = ablation.single_head_scores(enc, tasks)
    labels = tasks.labels
    para, pron = _importances(full, single, labels, np.arange(len(labels)),
                              np.arange(len(full["pronoun"])))  # fmt: skip
    shift = [float(1 - (full["emb"] * s["emb"]).sum(-1).mean()) for s in single]
    rng = np.random.default_rng(seed)
    orders = {"paraphrase_order": np.argsort(para, kind="stable"),
              "pronoun_order": np.argsort(pron, kind="stable")}  # fmt: skip
    for i in range(N_RANDOM_ORDERS):
        orders[f"random_{i}"] = rng.permutation(len(para))
    curves = {name: ablation.pruning_curve(enc, tasks, order, PRUNE_STEPS)
              for name, order in orders.items()}  # fmt: skip
    return {
        "full": {"margin": ablation.margin(full["pair_cos"], labels),
                 "auc": ablation.auc(full["pair_cos"], labels),
                 "pronoun": float(full["pronoun"].mean()),
                 "pronoun_positive": float((full["pronoun"] > 0).mean())},
        "n_pairs": len(labels), "n_pronoun_items": len(full["pronoun"]),
        "para_importance": _r(para), "pron_importance": _r(pron), "embedding_shift": _r(shift),
        "spearman": float(stats.spearmanr(para, pron).statistic),
        "spearman_abs": float(stats.spearmanr(np.abs(para), np.abs(pron)).statistic),
        "per_item": {"labels": labels.tolist(), "full_pair_cos": _r(full["pair_cos"]),
                     "full_pronoun": _r(full["pronoun"]),
                     "single_pair_cos": _r([s["pair_cos"] for s in single]),
                     "single_pronoun": _r([s["pronoun"] for s in single])},
        "bootstrap": {"n": N_BOOT, "seed": seed, **_bootstrap(full, single, labels, rng)},
        "orders": {k: [int(i) for i in v] for k, v in orders.items()},
        "curves": curves,
    }  # fmt: skip


def main(path: Path = RESULTS) -> dict:
    torch.set_num_threads(1)  # faster than 2 on a shared 2-core machine, and reproducible
    tok, enc = pretrained.load_minilm(dtype=torch.float32)
    corpus = load_corpus()
    article = "He didn't trust him because he knew the secret"
    results = {
        "command": COMMAND, "dtype": "float32", "threads": 1,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "offsets": offsets(tok, enc, corpus),
        "lenses": lenses(tok, enc, corpus, article),
        "pronoun_attention": pronoun_attention(tok, enc, corpus),
        "ablation": ablate(tok, enc, corpus),
    }  # fmt: skip
    path.write_text(json.dumps(results, indent=1) + "\n")
    return results


def load_results(path: Path = RESULTS) -> dict:
    """The recorded results (Chapter 8)."""
    return json.loads(Path(path).read_text())


if __name__ == "__main__":
    main()
    print(f"wrote {RESULTS.name}")
