"""One side of a side-by-side benchmark, in its own process: ``--impl ours`` (ablate) or ``--impl authors``
(the Conditional DETR repo given by ``--reference``, imported with run-time shims, never edited or copied).

Driven by JSON lines on stdin (see ``bench_common.Worker``); replies are JSON lines on the real stdout, and
anything the libraries print goes to stderr. Requests: ``setup``, ``train`` (n timed train steps),
``infer`` (n timed eval forwards + post-processing), ``rss`` (peak resident memory so far), ``peak_mem`` (the
device's peak allocated memory, CUDA only), ``quit``.

``--device cuda``, ``--amp`` (bf16 autocast around the forward, losses in fp32, as ``train.precision=bf16``)
and ``--compile BACKEND`` (``torch.compile`` of the model) serve benchmarks/bench_gpu.py; on CPU the same
branches run in tests/benchmarks (``--compile aot_eager`` traces without generating code).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # keep __pycache__ out of the shared reference checkout
# (hidden, heads, enc, dec, ff, queries, dropout, lr, lr_backbone) of each benchmark configuration
CONFIGS: dict[str, dict[str, Any]] = {
    "r50": dict(overrides=["model=r50"], hidden_dim=256, nheads=8, enc_layers=6, dec_layers=6, dim_feedforward=2048,
                num_queries=300, dropout=0.1, lr=1e-4, lr_backbone=1e-5, backbone="resnet50"),
    # the authors' smallest buildable relative of our tiny: d must be 256 (their sine embedding hardcodes 128)
    "tiny256": dict(overrides=["model.hidden_dim=256"], hidden_dim=256, nheads=4, enc_layers=2, dec_layers=3,
                    dim_feedforward=512, num_queries=20, dropout=0.0, lr=5e-4, lr_backbone=5e-4, backbone="tiny"),
    "tiny": dict(overrides=[], backbone="tiny"),  # ours only: the authors' code cannot build d=128
    # the smallest model both sides build: every branch of bench_gpu.py in seconds on CPU (its smoke test)
    "smoke": dict(overrides=["model.hidden_dim=256", "model.enc_layers=1", "model.dec_layers=2",
                             "model.dim_feedforward=64", "model.num_queries=6"], hidden_dim=256, nheads=4,
                  enc_layers=1, dec_layers=2, dim_feedforward=64, num_queries=6, dropout=0.0, lr=5e-4,
                  lr_backbone=5e-4, backbone="tiny"),
}
TINY_WIDTHS = (16, 32, 64, 128)


def tiny_layers(widths: tuple[int, ...] = TINY_WIDTHS) -> list:
    """The layers of our ``tiny`` backbone (conv-BN-ReLU stages), so the authors' model can run the same CNN."""
    from ablate.models.backbone import TinyBackbone

    return list(TinyBackbone(list(widths)).body)


class Side:
    """Model, criterion, optimizer and one train / inference step of one implementation."""

    def __init__(self, opts: argparse.Namespace):
        import torch

        self.opts, self.cfg = opts, CONFIGS[opts.config]
        self.device = torch.device(opts.device)
        data = torch.load(opts.inputs, weights_only=True)
        self.images = data["images"].to(self.device)
        self.targets = [{k: v.to(self.device) for k, v in t.items()} for t in data["targets"]]
        self.mask = torch.zeros((self.images.shape[0], *self.images.shape[-2:]), dtype=torch.bool, device=self.device)
        self.sizes = torch.tensor([list(self.images.shape[-2:])] * self.images.shape[0], device=self.device)
        self.num_boxes = float(sum(len(t["labels"]) for t in self.targets))

    def autocast(self):
        """bf16 autocast around the forward with ``--amp`` (a no-op context otherwise)."""
        import torch

        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.opts.amp)

    def compiled(self, model):
        import torch

        return torch.compile(model, backend=self.opts.compile) if self.opts.compile else model


class Ours(Side):
    def setup(self) -> dict[str, Any]:
        import torch

        import ablate
        from ablate.engine.optim import build_optimizer
        from ablate.losses import build_criterion
        from ablate.models.convert import load_pretrained

        cfg = ablate.compose([*self.cfg["overrides"], "model.num_classes=91"])
        torch.manual_seed(0)
        model = ablate.build_model(cfg)
        if self.opts.state and Path(self.opts.state).is_file():
            # the authors' weights; BN's num_batches_tracked is dropped by the converter (tiny backbone only)
            load_pretrained(model, torch.load(self.opts.state, weights_only=True),
                            allow_missing_prefixes=("backbone.body.",) if self.cfg["backbone"] == "tiny" else ())
        channels_last = cfg.train.channels_last if self.opts.channels_last is None else self.opts.channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format)  # what engine.train does
        self.forward = self.compiled(self.model)
        self.criterion = build_criterion(cfg.loss, num_classes=model.num_classes, focal=cfg.focal).to(self.device)
        self.optimizer = build_optimizer(model, cfg.train)
        self.clip = cfg.train.clip_max_norm
        self.focal = cfg.focal
        return {"params": sum(p.numel() for p in model.parameters()), "channels_last": bool(channels_last),
                "eval_loss": self.eval_loss()}

    def eval_loss(self) -> float:
        import torch

        self.model.eval()  # uncompiled and fp32: the parity check against the authors' eval loss
        with torch.no_grad():
            loss = self.criterion(self.model(self.batch(), self.mask), self.targets, self.num_boxes)["loss"]
        self.model.train()
        return float(loss)

    def batch(self):
        return self.images.contiguous(memory_format=self.memory_format)

    def train_step(self) -> None:
        """The body of engine.train's loop (single process: no all-reduce)."""
        import torch

        from ablate.engine.precision import to_fp32
        from ablate.engine.train import predictions_finite

        with self.autocast():
            outputs = self.forward(self.batch(), self.mask)
        outputs = to_fp32(outputs)
        losses = self.criterion(outputs, self.targets, self.num_boxes) if predictions_finite(outputs) else None
        assert losses is not None and bool(torch.isfinite(losses["loss"]))
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        assert bool(torch.isfinite(norm))
        self.optimizer.step()

    def infer_step(self) -> None:
        import torch

        from ablate.engine.precision import to_fp32
        from ablate.models.postprocess import postprocess

        self.model.eval()  # as engine.evaluate.predict: no dropout, the eval attention kernels, inference mode
        with torch.inference_mode(), self.autocast():
            outputs = self.forward(self.batch(), self.mask)
        with torch.inference_mode():
            postprocess(to_fp32(outputs), self.sizes, focal=self.focal, top_k=100)
        self.model.train()


class Authors(Side):
    def setup(self) -> dict[str, Any]:
        import torch
        from torch import nn

        authors_main = import_reference(Path(self.opts.reference))
        import models  # the authors' package (first on sys.path now)
        from util.misc import NestedTensor

        c = self.cfg
        cli = ["--device", self.opts.device, "--hidden_dim", str(c["hidden_dim"]), "--nheads", str(c["nheads"]),
               "--enc_layers", str(c["enc_layers"]), "--dec_layers", str(c["dec_layers"]),
               "--dim_feedforward", str(c["dim_feedforward"]), "--num_queries", str(c["num_queries"]),
               "--dropout", str(c["dropout"]), "--lr", str(c["lr"]), "--lr_backbone", str(c["lr_backbone"])]
        args = argparse.ArgumentParser(parents=[authors_main.get_args_parser()]).parse_args(cli)
        torch.manual_seed(0)
        model, criterion, post = models.build_model(args)
        if c["backbone"] == "tiny":  # their Backbone wraps a ResNet; give it our tiny CNN (same layers and keys)
            class TinyBody(nn.Sequential):
                def forward(self, x):  # IntermediateLayerGetter's interface: {name: layer4 features}
                    return {"0": super().forward(x)}

            torch.manual_seed(0)
            model.backbone[0].body = TinyBody(*tiny_layers())
            model.backbone[0].num_channels = TINY_WIDTHS[-1]
            model.input_proj = nn.Conv2d(TINY_WIDTHS[-1], c["hidden_dim"], kernel_size=1)
        if self.opts.state:
            torch.save(model.state_dict(), self.opts.state)
        model.to(self.device)  # their main.py moves the model and the criterion after building them
        criterion.to(self.device)
        self.model, self.criterion, self.post = model, criterion, post["bbox"]
        self.forward = self.compiled(model)
        self.samples = NestedTensor(self.images, self.mask)
        param_dicts = [  # main.py's two groups
            {"params": [p for n, p in model.named_parameters() if "backbone" not in n and p.requires_grad]},
            {"params": [p for n, p in model.named_parameters() if "backbone" in n and p.requires_grad],
             "lr": args.lr_backbone},
        ]
        self.optimizer = torch.optim.AdamW(param_dicts, lr=args.lr, weight_decay=args.weight_decay)
        self.max_norm = args.clip_max_norm
        model.train()
        criterion.train()
        return {"params": sum(p.numel() for p in model.parameters()), "eval_loss": self.eval_loss()}

    def total(self, loss_dict: dict) -> Any:
        w = self.criterion.weight_dict
        return sum(loss_dict[k] * w[k] for k in loss_dict.keys() if k in w)

    def eval_loss(self) -> float:
        import torch

        self.model.eval()
        with torch.no_grad():
            loss = self.total(self.criterion(self.model(self.samples), self.targets))
        self.model.train()
        return float(loss)

    def train_step(self) -> None:
        """engine.train_one_epoch's body (single process: reduce_dict is the identity)."""
        import torch

        with self.autocast():  # their code has no AMP: the same wrapping as ours, losses in fp32
            outputs = self.forward(self.samples)
        loss_dict = self.criterion(fp32(outputs), self.targets)
        losses = self.total(loss_dict)
        loss_value = losses.item()
        assert math.isfinite(loss_value)
        self.optimizer.zero_grad()
        losses.backward()
        if self.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_norm)
        self.optimizer.step()
        {k: v.item() for k, v in loss_dict.items()}  # MetricLogger.update

    def infer_step(self) -> None:
        import torch

        self.model.eval()  # their engine.evaluate: model.eval() under @torch.no_grad()
        with torch.no_grad():
            with self.autocast():
                outputs = self.forward(self.samples)
            self.post(fp32(outputs), self.sizes)
        self.model.train()


def fp32(outputs: Any) -> Any:
    """Floating tensors of nested outputs in fp32 (the authors' worker does not import ablate: their top-level
    packages would meet ours)."""
    import torch

    if torch.is_tensor(outputs):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, dict):
        return {k: fp32(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(fp32(v) for v in outputs)
    return outputs


def import_reference(repo: Path) -> Any:
    """Import the authors' ``main`` with the run-time shims of shared/reference/make_fixtures.py."""
    import torch
    import torch.nn.modules.linear as linear

    if not hasattr(linear, "_LinearWithBias"):  # removed in torch 2; their attention.py still imports it
        linear._LinearWithBias = linear.NonDynamicallyQuantizableLinear
    try:
        import torch._overrides  # noqa: F401
    except ImportError:
        import torch.overrides

        sys.modules["torch._overrides"] = torch.overrides
    repo = repo.resolve()
    if not (repo / "main.py").is_file():
        raise FileNotFoundError(f"--reference {repo}: not a Conditional DETR checkout (no main.py)")
    sys.path.insert(0, str(repo))
    import main as authors_main
    import models.backbone

    models.backbone.is_main_process = lambda: False  # pretrained=False: never download ImageNet weights
    return authors_main


def serve(opts: argparse.Namespace) -> None:
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # library prints must not corrupt the reply stream
    side: Side = Ours(opts) if opts.impl == "ours" else Authors(opts)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            cmd = req["cmd"]
            if cmd == "quit":
                out.write("{}\n")
                return
            if cmd == "setup":
                reply: dict[str, Any] = side.setup()
            elif cmd in ("train", "infer"):
                step = side.train_step if cmd == "train" else side.infer_step
                times = []
                for _ in range(req.get("n", 1)):
                    t0 = time.perf_counter()
                    step()
                    if side.device.type == "cuda":  # the step's kernels, not only their launch
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
                reply = {"times": times}
            elif cmd == "peak_mem":
                cuda = side.device.type == "cuda"
                reply = {"peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}
            elif cmd == "rss":
                reply = {"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            elif cmd == "profile":
                reply = {"table": profile(side, req.get("n", 2), req.get("rows", 25))}
            elif cmd == "breakdown":
                reply = {"ms_per_step": breakdown(side, req.get("n", 2))}
            else:
                raise ValueError(f"unknown cmd {cmd!r}")
        except Exception as e:  # report, keep serving: the parent decides
            import traceback

            traceback.print_exc()
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")


def profile(side: Side, n: int, rows: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            side.train_step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


# Where a train step's CPU time goes, by kind of kernel (aten op names; the rest is "other").
KERNEL_KINDS = {
    "convolution (fwd+bwd)": ("conv",),
    "matmul (mm/addmm/bmm/linear)": ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul"),
    "dropout masks (bernoulli_ / uniform_)": ("bernoulli", "uniform_"),  # theirs: F.dropout; ours: rand_like
    "optimizer (AdamW)": ("adamw", "lerp_", "addcdiv_", "addcmul_", "aten::sqrt"),
}


def breakdown(side: Side, n: int) -> dict[str, float]:
    """Self CPU ms per train step grouped into ``KERNEL_KINDS`` (+ "other", "total")."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            side.train_step()
    out = dict.fromkeys([*KERNEL_KINDS, "other"], 0.0)
    for e in prof.key_averages():
        ms = e.self_cpu_time_total / 1e3 / n
        kind = next((k for k, pats in KERNEL_KINDS.items() if any(p in e.key.lower() for p in pats)), "other")
        out[kind] += ms
    out["total"] = sum(out.values())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--impl", choices=("ours", "authors"), required=True)
    p.add_argument("--config", choices=sorted(CONFIGS), required=True)
    p.add_argument("--inputs", required=True, help="a .pt with 'images' (B,3,H,W) and 'targets'")
    p.add_argument("--state", help="authors: where to save their state dict; ours: load it from there")
    p.add_argument("--reference", help="the authors' ConditionalDETR checkout (authors only)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--channels-last", type=int, choices=(0, 1), default=None, help="ours: override train.channels_last")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--amp", action="store_true", help="bf16 autocast around the forward (losses in fp32)")
    p.add_argument("--compile", metavar="BACKEND", help="torch.compile the model with this backend (inductor, …)")
    serve(p.parse_args())


if __name__ == "__main__":
    main()
