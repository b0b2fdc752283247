"""Flash-style attention (Chapter 9) against ``F.scaled_dot_product_attention``.

``mha.flash.flash_attention`` (torch) and ``mha.flash.flash_attention_numpy`` must give
SDPA's result to float64 round-off (and within 1e-5 in float32) for lengths that are not
multiples of the block size, causal and masked inputs, block size 1, and their gradients
must equal SDPA's. SDPA's boolean masks mean True = *attend*, the opposite of the course,
so every boolean mask is inverted before it goes to SDPA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mha import attention
from mha.flash import flash_attention, flash_attention_numpy

ATOL64 = 1e-13  # measured max |diff| here: about 7e-16 (order 1e-16 is the float64 epsilon)
ATOL32 = 1e-5
# (N, h, L, S, d, d_v, block_size): L and S are chosen not to be multiples of block_size
CASES = [
    (2, 3, 37, 29, 8, 8, 8),
    (1, 2, 17, 40, 16, 4, 1),
    (2, 1, 50, 50, 8, 8, 16),
    (1, 4, 5, 130, 8, 8, 128),
    (1, 1, 1, 1, 4, 4, 3),
]
MASKS = ["none", "causal", "bool", "bool_broadcast", "float", "causal_and_bool"]


def _ids(case):
    n, h, length, src_len, d, dv, bs = case
    return f"N{n}-h{h}-L{length}-S{src_len}-d{d}-dv{dv}-B{bs}"


def _qkv(case, dtype=torch.float64, requires_grad=False, seed=0):
    n, h, length, src_len, d, dv, _ = case
    gen = torch.Generator().manual_seed(seed)
    shapes = [(n, h, length, d), (n, h, src_len, d), (n, h, src_len, dv)]
    return [
        torch.randn(s, generator=gen, dtype=dtype).requires_grad_(requires_grad) for s in shapes
    ]


def _mask(kind, case, dtype=torch.float64, seed=1):
    """``(course_mask, is_causal)``: bool True = blocked, or float added. Key 0 stays open."""
    n, h, length, src_len, *_ = case
    gen = torch.Generator().manual_seed(seed)
    if kind in ("none", "causal"):
        return None, kind == "causal"
    shape = (1, 1, 1, src_len) if kind == "bool_broadcast" else (n, h, length, src_len)
    if kind == "float":
        mask = torch.randn(n, 1, length, src_len, generator=gen, dtype=dtype)
        mask[torch.rand(mask.shape, generator=gen) < 0.3] = float("-inf")
        mask[..., 0] = 0.0
        return mask, False
    mask = torch.rand(shape, generator=gen) < 0.4
    mask[..., 0] = False
    return mask, kind == "causal_and_bool"


def _sdpa(q, k, v, mask, is_causal):
    """SDPA with the course's mask: bool inverted (SDPA: True = attend), causal folded in."""
    if mask is not None and mask.dtype == torch.bool:
        mask = ~mask
    if is_causal and mask is not None:  # SDPA refuses both at once
        future = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool).triu(1)
        mask = mask & ~future
        is_causal = False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_float64_matches_sdpa(case, kind):
    q, k, v = _qkv(case)
    mask, causal = _mask(kind, case)
    expected = _sdpa(q, k, v, mask, causal)
    got = flash_attention(q, k, v, attn_mask=mask, is_causal=causal, block_size=case[-1])
    assert got.shape == expected.shape and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, atol=ATOL64, rtol=0)


@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_numpy_twin_matches_sdpa(case, kind):
    q, k, v = _qkv(case)
    mask, causal = _mask(kind, case)
    expected = _sdpa(q, k, v, mask, causal).numpy()
    arrays = [t.numpy() for t in (q, k, v)]
    np_mask = None if mask is None else mask.numpy()
    got = flash_attention_numpy(*arrays, attn_mask=np_mask, is_causal=causal, block_size=case[-1])
    np.testing.assert_allclose(got, expected, atol=ATOL64, rtol=0)


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "float"])
@pytest.mark.parametrize("case", CASES[:3], ids=_ids)
def test_float32_within_1e5(case, kind):
    q, k, v = _qkv(case, dtype=torch.float32)
    mask, causal = _mask(kind, case, dtype=torch.float32)
    expected = _sdpa(q, k, v, mask, causal)
    got = flash_attention(q, k, v, attn_mask=mask, is_causal=causal, block_size=case[-1])
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=ATOL32, rtol=0)


def test_block_size_does_not_change_the_result():
    case = (1, 2, 23, 19, 8, 8, 1)
    q, k, v = _qkv(case)
    reference = flash_attention(q, k, v, block_size=1)
    for block in (2, 5, 19, 23, 64):
        torch.testing.assert_close(flash_attention(q, k, v, block_size=block), reference,
                                   atol=ATOL64, rtol=0)  # fmt: skip


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "float"])
def test_gradients_match_sdpa(kind):
    case = (2, 2, 13, 11, 4, 3, 4)
    mask, causal = _mask(kind, case)
    ours = _qkv(case, requires_grad=True)
    theirs = _qkv(case, requires_grad=True)
    weights = torch.randn(case[0], case[1], case[2], case[5], dtype=torch.float64)
    (
        flash_attention(*ours, attn_mask=mask, is_causal=causal, block_size=4) * weights
    ).sum().backward()
    (_sdpa(*theirs, mask, causal) * weights).sum().backward()
    for name, a, b in zip("qkv", ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-12, rtol=0, msg=f"d{name} differs")


def test_gradcheck():
    case = (1, 2, 5, 7, 3, 2, 2)
    q, k, v = _qkv(case, requires_grad=True)
    mask, _ = _mask("bool", case)
    assert torch.autograd.gradcheck(
        lambda q, k, v: flash_attention(q, k, v, attn_mask=mask, is_causal=True, block_size=2),
        (q, k, v),
    )


def test_fully_masked_rows_give_zeros_and_finite_gradients():
    case = (1, 2, 9, 6, 4, 4, 4)
    q, k, v = _qkv(case, requires_grad=True)
    mask = torch.rand(1, 2, 9, 6, generator=torch.Generator().manual_seed(3)) < 0.3
    mask[..., 0] = False
    mask[0, 1, 2] = True  # one head's row 2 sees nothing
    mask[0, :, 7] = True  # row 7 sees nothing in any head
    out = flash_attention(q, k, v, attn_mask=mask, block_size=4)
    assert torch.equal(out[0, 1, 2], torch.zeros(4, dtype=torch.float64))
    assert torch.equal(out[0, :, 7], torch.zeros(2, 4, dtype=torch.float64))
    expected, _ = attention.scaled_dot_product_attention(
        q.detach().numpy(), k.detach().numpy(), v.detach().numpy(), mask.numpy()
    )
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=ATOL64, rtol=0)
    np_out = flash_attention_numpy(
        *(t.detach().numpy() for t in (q, k, v)), mask.numpy(), block_size=4
    )
    np.testing.assert_allclose(np_out, expected, atol=ATOL64, rtol=0)
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert torch.equal(q.grad[0, :, 7], torch.zeros(2, 4, dtype=torch.float64))


def test_float_mask_of_minus_inf_row_gives_zeros():
    case = (1, 1, 4, 5, 2, 2, 2)
    q, k, v = _qkv(case)
    mask = torch.zeros(1, 1, 4, 5, dtype=torch.float64)
    mask[0, 0, 1] = float("-inf")
    out = flash_attention(q, k, v, attn_mask=mask, block_size=2)
    assert torch.equal(out[0, 0, 1], torch.zeros(2, dtype=torch.float64))
    assert torch.isfinite(out).all()


def test_never_builds_the_score_matrix():
    """Every tensor of the last dim S' that the loop creates has at most block_size columns."""
    case = (1, 1, 64, 64, 4, 4, 8)
    q, k, v = _qkv(case)
    seen = []

    class Spy(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            if isinstance(result, torch.Tensor) and result.dim() == 4:
                seen.append(tuple(result.shape))
            return result

    with Spy():
        flash_attention(q, k, v, block_size=8)
    assert seen, "the spy saw no tensor"
    assert max(s[2] * s[3] for s in seen if s != (1, 1, 64, 4)) <= 8 * 8, sorted(set(seen))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"q": torch.zeros(2, 3, 4)}, "q must have 4 dims"),
        ({"k": torch.zeros(1, 2, 5, 3)}, r"expected q \(N, h, L, d\)"),
        ({"v": torch.zeros(1, 2, 6, 4)}, r"expected q \(N, h, L, d\)"),
        ({"k": torch.zeros(1, 3, 5, 4)}, "share"),
        ({"attn_mask": torch.zeros(2, 5, dtype=torch.bool)}, "does not broadcast"),
        ({"attn_mask": torch.zeros(3, 5, dtype=torch.int64)}, "must be bool"),
        ({"block_size": 0}, "block_size must be a positive int"),
        ({"block_size": 2.0}, "block_size must be a positive int"),
        ({"v": torch.zeros(1, 2, 5, 4, dtype=torch.float64)}, "share a floating dtype"),
        ({"q": np.zeros((1, 2, 3, 4))}, "torch tensors"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    args = {
        "q": torch.zeros(1, 2, 3, 4),
        "k": torch.zeros(1, 2, 5, 4),
        "v": torch.zeros(1, 2, 5, 4),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        flash_attention(**args)


def test_numpy_twin_bad_input_raises_value_error():
    q = np.zeros((1, 2, 3, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        flash_attention_numpy(q, q, q, attn_mask=np.zeros((4, 3), dtype=bool))
    with pytest.raises(ValueError, match="q must have 4 dims"):
        flash_attention_numpy(q[0], q, q)


def test_peak_memory_stays_near_the_output_size():
    """In a fresh process (benchmarks/bench_flash.py's worker), L = 2048, h = 8, d = 64:
    flash-style adds at most 2x its output's bytes; the naive (L, S) matrix alone would be 64x."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_flash.py"
    done = subprocess.run(
        [sys.executable, str(script), "--worker", "flash", "2048"],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    scores_bytes = 8 * 2048 * 2048 * 4
    assert result["extra_bytes"] <= 2 * result["output_bytes"], result
    assert result["extra_bytes"] < scores_bytes / 16, result
