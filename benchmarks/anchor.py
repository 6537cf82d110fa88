"""Bench group ``anchor`` (``make bench``): caplm's generator step against a bare PyTorch loop
of the same merge model, with the same run's matmul peak.

The bare loop is what anyone would write for the study's generator: ``nn.Embedding`` ->
``nn.GRU`` -> concat with ``relu(nn.Linear(image))`` -> ``nn.Linear`` over the vocabulary,
cross-entropy over every position, Adam, gradient norm clipped to 5. Every target is real
(no padding), so both do the same arithmetic; caplm is stepped by hand (its Lightning fit
step is the ``study_sizes`` group's ``lightning_fit_step``, within a few per cent of that)
with its dropouts at 0 (what the bare loop has) and, beside it, at its defaults. Sizes: the
study's Flickr8k generator (V 2,500, embedding 502, GRU 201, image 1,280 -> 430, batch 128,
T 20); ``--quick``: V 300, batch 16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import (
    Figure,
    Run,
    Timing,
    generator_config,
    hand_stepper,
    matmul_gflops,
    with_ratio,
)
from caplm import CONF_DIR

#: The anchor's sizes; the image features are EfficientNet-Lite0's 1,280 (real data's encoder).
ANCHOR_SIZES = dict(vocab=2500, embed=502, rnn=201, post_image=430, batch=128, steps=20,
                    features=1280)  # fmt: skip
ADAM_LR = 1e-3


class BareMerge(nn.Module):
    """The merge model in bare PyTorch: no init scheme, no learned initial state, no dropout."""

    def __init__(self, vocab: int, embed: int, rnn: int, features: int, post_image: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, rnn, batch_first=True)
        self.image = nn.Linear(features, post_image)
        self.output = nn.Linear(rnn + post_image, vocab)

    def forward(self, inputs: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.embedding(inputs))
        img = F.relu(self.image(features))[:, None, :].expand(-1, inputs.size(1), -1)
        return self.output(torch.cat([h, img], dim=-1))


def bare_stepper(model: BareMerge, batch: dict, clip: float):
    """One step of the bare loop: every position's cross-entropy, Adam, clipping to ``clip``."""
    optimiser = torch.optim.Adam(model.parameters(), lr=ADAM_LR)

    def step():
        logits = model(batch["inputs"], batch["features"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()

    return step


def anchor_batch(z: dict, device: torch.device) -> dict:
    """A batch of ``z['batch']`` captions of ``z['steps']`` positions, every target a real word."""
    from caplm.data.text import SPECIALS

    gen = torch.Generator().manual_seed(0)
    words = torch.randint(len(SPECIALS), z["vocab"], (z["batch"], z["steps"] + 1), generator=gen)
    batch = {"inputs": words[:, :-1], "targets": words[:, 1:].contiguous()}
    batch["features"] = torch.randn(z["batch"], z["features"], generator=gen).relu()
    return {k: v.to(device) for k, v in batch.items()}


def bench_anchor(run: Run) -> list[Figure]:
    from caplm.models.caption_generator import CaptionGenerator

    z = run.pick(ANCHOR_SIZES, {**ANCHOR_SIZES, "vocab": 300, "batch": 16})
    steps = run.pick(10, 2)
    clip = OmegaConf.load(CONF_DIR / "model" / "merge.yaml").fit.gradient_clip_val
    batch = anchor_batch(z, run.device)
    args = generator_config(embed_size=z["embed"], rnn_size=z["rnn"])
    args["post_image_size"] = z["post_image"]
    no_dropout = dict(embed_dropout=0.0, rnn_dropout=0.0, image_dropout=0.0)

    def caplm(**overrides):
        torch.manual_seed(0)
        model = CaptionGenerator(z["vocab"], z["features"], **{**args, **overrides})
        return hand_stepper(model.to(run.device).train(), batch, clip)

    torch.manual_seed(0)
    bare_model = BareMerge(z["vocab"], z["embed"], z["rnn"], z["features"], z["post_image"])
    steppers = [bare_stepper(bare_model.to(run.device).train(), batch, clip), caplm(**no_dropout),
                caplm()]  # fmt: skip
    bare, plain, default = (
        t / steps * 1e3
        for t in run.time_pair(*[lambda s=s: [s() for _ in range(steps)] for s in steppers])
    )
    with FlopCounterMode(display=False) as flops:
        steppers[0]()
    gflop = flops.get_total_flops() / 1e9
    peak_n = run.pick(2048, 512)
    peak = Figure("anchor", "anchor_matmul_peak", matmul_gflops(run, peak_n), "GFLOP/s",
                  note=f"float32 {peak_n}^2 matmul, {torch.get_num_threads()} threads, this run")  # fmt: skip
    sizes = (f"V={z['vocab']}, embed {z['embed']}, GRU {z['rnn']}, image {z['features']} -> "
             f"{z['post_image']}, batch {z['batch']}, T={z['steps']}, all targets real")  # fmt: skip
    bare_fig = Figure("anchor", "bare_pytorch_step", bare, "ms/step",
                      note=f"nn.Embedding, nn.GRU, concat, nn.Linear; Adam; clip {clip}; {sizes}")  # fmt: skip
    rate = Figure("anchor", "bare_step_rate", Timing(tuple(gflop / (t / 1e3) for t in bare.times)),
                  "GFLOP/s", note=f"{gflop:.2f} GFLOP a step (fwd + bwd, counted)")  # fmt: skip
    dropouts = "/".join(str(args[k]) for k in ("embed_dropout", "rnn_dropout", "image_dropout"))
    return [
        bare_fig,
        with_ratio(
            Figure(
                "anchor",
                "caplm_step_dropout_0",
                plain,
                "ms/step",
                note="caplm's generator stepped by hand, dropouts 0 (target <= 1.05x)",
            ),
            bare_fig,
        ),  # fmt: skip
        with_ratio(
            Figure(
                "anchor",
                "caplm_step_default",
                default,
                "ms/step",
                note=f"caplm's generator at its default dropouts ({dropouts})",
            ),
            bare_fig,
        ),  # fmt: skip
        peak,
        with_ratio(rate, peak),
    ]
