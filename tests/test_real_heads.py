"""Chapter 8: the corpus, the head measurements and the recorded results.

The measurement functions are checked on hand-made attention maps whose answer
is known; the recorded ``mha/results/real_heads.json`` is checked by
recomputing a slice of it (one sentence's lens scores, one head's ablation).
"""

import json

import numpy as np
import pytest
import torch

from mha.course import ablation, corpus, real_heads
from mha.course.real_heads_results import load_results

ARTICLE = "He didn't trust him because he knew the secret"


def test_committed_corpus_is_what_the_templates_build():
    assert corpus.load_corpus() == json.loads(json.dumps(corpus.build_corpus()))


def test_corpus_is_labelled_and_sized():
    c = corpus.load_corpus()
    assert "Written for the course" in c["note"]
    n = sum(len(v) * (4 if k == "knew_pairs" else 2 if "pairs" in k else 1)
            for k, v in c.items() if isinstance(v, list))  # fmt: skip
    assert n > 300  # "a few hundred sentences"
    assert {p["label"] for p in c["paraphrase_pairs"]} == {0, 1}
    for item in c["pronoun_pairs"]:  # only the pronoun differs
        assert item["he"].replace(" he ", " she ") == item["she"]


def previous_token_maps(n=7, layers=2, heads=3):
    """Every head looks at the previous position (and [CLS] at itself)."""
    m = np.zeros((layers, heads, n, n))
    m[:, :, 0, 0] = 1
    for q in range(1, n):
        m[:, :, q, q - 1] = 1
    return m


def test_offset_profile_finds_a_previous_token_head():
    prof = real_heads.offset_profile([previous_token_maps(), previous_token_maps(9)])
    cols = [*map(str, real_heads.OFFSETS), "[CLS]", "[SEP]"]
    assert prof.shape == (2, 3, len(cols))
    assert np.allclose(prof[:, :, cols.index("-1")], 1)
    assert np.allclose(prof[:, :, cols.index("0")], 0)
    # query 1 looks at [CLS]: one of the 5 (n=7) + 7 (n=9) word-piece queries
    assert np.allclose(prof[:, :, cols.index("[CLS]")], 2 / 12)


def test_mass_and_lens_scores():
    m = np.full((1, 1, 13, 13), 1 / 13)
    assert np.allclose(real_heads.mass(m, [5], [1, 8]), 2 / 13)
    scores = real_heads.lens_scores(m)
    assert set(scores) == {"relationships", "emotion", "chronology"}
    assert np.allclose(scores["chronology"], 1 / 13)
    with pytest.raises(ValueError, match="13 word pieces"):
        real_heads.lens_scores(np.zeros((1, 1, 12, 12)))


@pytest.fixture(scope="module")
def model():
    from mha import pretrained

    torch.set_num_threads(1)  # as the recorded run
    return pretrained.load_minilm(dtype=torch.float32)


def test_pronoun_scores_cancel_position(model):
    tok, _ = model
    item = corpus.load_corpus()["pronoun_pairs"][0]
    n_he, n_she = len(tok.tokens(item["he"])), len(tok.tokens(item["she"]))
    uniform = [np.full((1, 1, n_he, n_he), 1 / n_he)], [np.full((1, 1, n_she, n_she), 1 / n_she)]
    assert np.allclose(real_heads.pronoun_scores(tok, *uniform, [item]), 0)


def test_recorded_results_reproduce(model):
    """A slice of real_heads.json, recomputed: the lens scores of the article and one ablation."""
    tok, enc = model
    results = load_results()
    art = real_heads.lens_scores(real_heads.attention_maps(tok, enc, [ARTICLE])[0])
    for lens, got in art.items():
        assert np.abs(got - np.array(results["lenses"][lens]["article"])).max() < 1e-4
    c = corpus.load_corpus()
    small = {
        **c,
        "paraphrase_pairs": c["paraphrase_pairs"][:6],
        "pronoun_pairs": c["pronoun_pairs"][:4],
    }
    tasks = ablation.Tasks(tok, small)
    mask = torch.ones(6, 12)
    mask[0, 2] = 0
    s = ablation.task_scores(enc, tasks, mask)
    per_item = results["ablation"]["per_item"]
    assert np.abs(s["pair_cos"] - np.array(per_item["single_pair_cos"][2][:6])).max() < 1e-4
    assert np.abs(s["pronoun"] - np.array(per_item["single_pronoun"][2][:4])).max() < 1e-4


def test_recorded_results_are_consistent():
    ab = load_results()["ablation"]
    per_item = ab["per_item"]
    labels = np.array(per_item["labels"])
    full = np.array(per_item["full_pair_cos"])
    assert abs(ablation.margin(full, labels) - ab["full"]["margin"]) < 1e-5
    drops = [ablation.margin(full, labels) - ablation.margin(np.array(s), labels)
             for s in per_item["single_pair_cos"]]  # fmt: skip
    assert np.allclose(drops, ab["para_importance"], atol=1e-5)
    curve = ab["curves"]["paraphrase_order"]
    assert curve[0]["removed"] == 0 and abs(curve[0]["margin"] - ab["full"]["margin"]) < 1e-6
    lo, hi = ab["bootstrap"]["rho_ci"]
    assert lo <= ab["spearman"] <= hi


def test_auc_and_margin():
    labels = np.array([1, 1, 0, 0])
    assert ablation.auc(np.array([0.9, 0.8, 0.1, 0.2]), labels) == 1.0
    assert ablation.auc(np.array([0.1, 0.2, 0.9, 0.8]), labels) == 0.0
    assert ablation.margin(np.array([0.9, 0.7, 0.1, 0.3]), labels) == pytest.approx(0.6)
