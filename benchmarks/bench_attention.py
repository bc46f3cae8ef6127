"""Attention kernels: the fused SDPA path vs the explicit path that also returns the weights
(``ablate.models.attention.attend`` with ``need_weights`` False / True), forward and forward + backward."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from bench_common import main as cli
from bench_common import stats, write_result

from ablate.models.attention import attend, padding_bias

# (name, batch, heads, queries, keys, qk dim per head, v dim per head) at R50 sizes, 300 queries × ~600 keys
SHAPES = [
    ("Conditional cross-attn (q,k 64-d = [content; spatial], v 32-d)", 2, 8, 300, 600, 64, 32),
    ("DETR cross-attn (32-d)", 2, 8, 100, 600, 32, 32),
    ("decoder self-attn (300 queries)", 2, 8, 300, 300, 32, 32),
    ("encoder self-attn (600 tokens)", 2, 8, 600, 600, 32, 32),
]


def time_fn(fn: Any, reps: int) -> dict[str, float]:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return stats(times)


def run(quick: bool) -> dict[str, Any]:
    reps = 5 if quick else 20
    g = torch.Generator().manual_seed(0)
    rows = []
    for name, b, m, nq, nk, e, ev in SHAPES:
        q = torch.randn(b, m, nq, e, generator=g, requires_grad=True)
        k = torch.randn(b, m, nk, e, generator=g, requires_grad=True)
        v = torch.randn(b, m, nk, ev, generator=g, requires_grad=True)
        pad = torch.zeros(b, nk, dtype=torch.bool)
        pad[1, nk * 3 // 4:] = True  # image 1 padded: the masked kernels
        bias = padding_bias(pad, q.dtype)
        fast = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        slow = attend(q, k, v, bias, 0.0, True)[0]
        assert torch.allclose(fast, slow, atol=1e-5), (fast - slow).abs().max()
        row: dict[str, Any] = {"shape": name, "q": [b, m, nq, e], "k": [b, m, nk, e], "v": [b, m, nk, ev]}
        sdpa = lambda a=(q, k, v, bias): F.scaled_dot_product_attention(*a[:3], attn_mask=a[3])  # noqa: E731
        explicit = lambda a=(q, k, v, bias): attend(*a, 0.0, True)[0]  # noqa: E731
        for label, fn in (("sdpa", sdpa), ("explicit", explicit)):
            with torch.no_grad():
                row[f"{label}_fwd"] = time_fn(fn, reps)
            row[f"{label}_fwd_bwd"] = time_fn(lambda f=fn: f().sum().backward(), reps)
        row["attend_uses"] = "SDPA" if e == ev else "explicit"  # attend()'s CPU choice without dropout
        rows.append(row)
    ms = lambda s: f"{s['median_s'] * 1e3:.2f}"  # noqa: E731
    md = ["## Attention kernels: SDPA vs the explicit path that returns weights (CPU, padded batch)", "",
          "| shapes (B=2, 8 heads) | SDPA fwd ms | explicit fwd ms | SDPA fwd+bwd ms | explicit fwd+bwd ms | "
          "explicit / SDPA (fwd+bwd) | `attend` uses (CPU, eval) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["explicit_fwd_bwd"]["median_s"] / r["sdpa_fwd_bwd"]["median_s"]
        md.append(f"| {r['shape']}, {r['q'][2]}×{r['k'][2]} | {ms(r['sdpa_fwd'])} | {ms(r['explicit_fwd'])} | "
                  f"{ms(r['sdpa_fwd_bwd'])} | {ms(r['explicit_fwd_bwd'])} | {ratio:.2f}× | {r['attend_uses']} |")
    md += ["", f"Median of {reps} runs, {torch.get_num_threads()} thread(s). Outputs of both paths agree to 1e-5. "
           "SDPA = `torch.nn.functional.scaled_dot_product_attention`; explicit = `attend(..., need_weights=True)` "
           "(softmax weights materialised). On CPU `attend` picks the explicit path when q/k and v widths differ "
           "or dropout is on (SDPA then runs its slower math kernel); on GPU it always uses SDPA."]
    out = {"threads": torch.get_num_threads(), "rows": rows}
    write_result("attention", out, "\n".join(md))
    return out


if __name__ == "__main__":
    cli(run, __doc__)
