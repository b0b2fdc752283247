"""Chapter 7: a tiny, deterministic CPU training loop for the experiments.

Everything runs in float64 with fixed seeds. The data, the initial weights and
every integer count up to the first floating-point sum are the same on any
machine; after that, the same machine, library versions, CPU kernel settings
and thread count give the same numbers bit for bit, but another CPU kernel
(another SIMD width, BLAS branch or thread count) sums in another order, and
training amplifies that round-off: after 2000 steps losses differ in their
fifth or sixth significant digit, and a run near a tipping point can end
elsewhere. :mod:`mha.experiments.spread` measures how far. The progress bar
has no timings in it, so notebook outputs stay identical from run to run.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from mha.encoder import Encoder
from mha.experiments.tasks import IGNORE, TaskBatch, previous_plus_marked, task_rng

__all__ = ["Config", "TaskModel", "progress_bar", "task_loss", "accuracy", "make_data", "train"]

DTYPE = torch.float64
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps{postfix}"


@dataclass(frozen=True)
class Config:
    """One training run of Chapter 7 (the seed is passed separately).

    ``train_size=None`` draws a fresh batch every step (plenty of data);
    an int fixes a training set of that many sequences (small data).
    """

    num_heads: int = 2
    d_model: int = 32
    num_layers: int = 1
    dim_feedforward: int = 64
    seq_len: int = 10
    vocab_size: int = 5
    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    train_size: int | None = None
    test_size: int = 1000
    eval_every: int = 250

    def to_dict(self) -> dict:
        return asdict(self)


class TaskModel(nn.Module):
    """``mha.Encoder`` (token embedding, sinusoidal positions, post-norm layers) + a linear readout.

    Introduced in Chapter 7. ``tokens`` ``(N, L)`` -> logits ``(N, L, vocab_size)``.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.encoder = Encoder(
            cfg.num_layers,
            cfg.d_model,
            cfg.num_heads,
            cfg.dim_feedforward,
            vocab_size=2 * cfg.vocab_size,
            max_len=cfg.seq_len,
            dtype=DTYPE,
        )
        self.readout = nn.Linear(cfg.d_model, cfg.vocab_size, dtype=DTYPE)

    def forward(
        self, tokens: Tensor, need_weights: bool = False, head_mask: Tensor | None = None
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Logits ``(N, L, V)``; with ``need_weights`` also per-layer weights ``(N, h, L, L)``."""
        out = self.encoder(tokens, need_weights=need_weights, head_mask=head_mask)
        if need_weights:
            return self.readout(out[0]), out[1]
        return self.readout(out)


def progress_bar(total: int, desc: str, enable: bool = True) -> tqdm:
    """A tqdm bar without timings or rates: its final state is the same on every run (Chapter 7).

    Plain text on stderr (Jupyter redraws it in place); ``ncols`` is fixed so
    the bar's width does not depend on the terminal.
    """
    return tqdm(
        total=total,
        desc=desc,
        disable=not enable,
        bar_format=BAR_FORMAT,
        ncols=80,
        ascii=False,
        mininterval=0.5,
        file=sys.stderr,
    )


def task_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over the positions that have a target (Chapter 7)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


@torch.no_grad()
def accuracy(model: nn.Module, data: TaskBatch, head_mask: Tensor | None = None) -> tuple[int, int]:
    """``(correct, total)`` over the positions that have a target, exact integers (Chapter 7)."""
    predictions = model(data.tokens, head_mask=head_mask).argmax(-1)  # (N, L)
    scored = data.targets != IGNORE
    return int((predictions[scored] == data.targets[scored]).sum()), int(scored.sum())


def make_data(cfg: Config, num_examples: int, seed: int | None, stream: str) -> TaskBatch:
    """``num_examples`` sequences of the task from ``stream`` of run ``seed`` (Chapter 7)."""
    rng = task_rng(seed, stream)
    return previous_plus_marked(num_examples, cfg.seq_len, cfg.vocab_size, rng)


def _batches(cfg: Config, seed: int):
    """Endless training batches: fresh ones, or samples from a fixed training set."""
    rng = task_rng(seed, "train")
    if cfg.train_size is None:
        while True:
            yield previous_plus_marked(cfg.batch_size, cfg.seq_len, cfg.vocab_size, rng)
    train_set = make_data(cfg, cfg.train_size, seed, "train_set")
    while True:
        yield train_set.subset(torch.from_numpy(rng.integers(0, cfg.train_size, cfg.batch_size)))


def _step(model: nn.Module, opt: torch.optim.Optimizer, batch: TaskBatch) -> float:
    loss = task_loss(model(batch.tokens), batch.targets)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def _evaluate(model, cfg: Config, seed: int, test: TaskBatch, step: int, loss: float) -> dict:
    with torch.no_grad():
        logits = model(test.tokens)  # one forward for the test loss and accuracy
    scored = test.targets != IGNORE
    correct = int((logits.argmax(-1)[scored] == test.targets[scored]).sum())
    point = {
        "step": step,
        "train_loss": loss,
        "test_acc": correct / int(scored.sum()),
        "test_loss": task_loss(logits, test.targets).item(),
    }
    if cfg.train_size is not None:
        train_set = make_data(cfg, cfg.train_size, seed, "train_set")
        point["train_acc"] = _fraction(accuracy(model, train_set))
    return point


def _fraction(counts: tuple[int, int]) -> float:
    return counts[0] / counts[1]


def train(
    cfg: Config, seed: int, progress: bool = True, desc: str | None = None
) -> tuple[TaskModel, dict]:
    """Train a :class:`TaskModel` on the task; return ``(model, record)``.

    Introduced in Chapter 7. ``record`` holds the seed, the parameter count,
    the learning curve (every ``eval_every`` steps) and the final exact test
    (and, with a fixed training set, train) accuracy counts.
    """
    torch.manual_seed(seed)
    model = TaskModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    test, batches, curve = make_data(cfg, cfg.test_size, None, "test"), _batches(cfg, seed), []
    with progress_bar(cfg.steps, desc or f"h={cfg.num_heads} seed={seed}", progress) as bar:
        for step in range(1, cfg.steps + 1):
            loss = _step(model, opt, next(batches))
            if step % cfg.eval_every == 0:
                curve.append(_evaluate(model, cfg, seed, test, step, loss))
                bar.set_postfix_str(f"test acc {curve[-1]['test_acc']:.3f}", refresh=False)
            bar.update()
    return model, _record(model, cfg, seed, test, curve)


def _record(model, cfg: Config, seed: int, test: TaskBatch, curve: list[dict]) -> dict:
    record = {
        "num_heads": cfg.num_heads,
        "d_model": cfg.d_model,
        "lr": cfg.lr,
        "seed": seed,
        "num_params": sum(p.numel() for p in model.parameters()),
        "curve": curve,
    }
    record["test_correct"], record["test_total"] = accuracy(model, test)
    if cfg.train_size is not None:
        train_set = make_data(cfg, cfg.train_size, seed, "train_set")
        record["train_correct"], record["train_total"] = accuracy(model, train_set)
    return record
