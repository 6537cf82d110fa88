"""What the benchmark groups share (:mod:`benchmarks.bench` and the groups in their own
modules: ``anchor``, ``gpu_grid``, ``study_scale``): timings and figures, the run's settings,
the study's sizes, and the models and random inputs they time. Nothing here imports a group,
so no group module imports :mod:`benchmarks.bench` (no import circle)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from omegaconf import OmegaConf

from caplm import CONF_DIR

FEATURE_SIZE = 1280  # EfficientNet-Lite0 pooled once (real data's default encoder)
GEN_VOCAB = 100  # about the shapes vocabulary
RETRIEVAL_VOCAB = 2000  # about a Flickr8k vocabulary
BRUTE_BATCH = 256  # (caption, image) pairs per forward in the brute-force baseline


@dataclass(frozen=True)
class Timing:
    """Seconds of the timed repeats; ``timing * k`` and ``timing / k`` scale every one."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median: how noisy the repeats were."""
        return (max(self.times) - min(self.times)) / self.median if self.median else 0.0

    def __mul__(self, k: float) -> Timing:
        return Timing(tuple(t * k for t in self.times))

    def __truediv__(self, k: float) -> Timing:
        return self * (1 / k)


@dataclass
class Figure:
    group: str
    name: str
    value: float | Timing  # a Timing becomes its median (and fills repeats and spread)
    unit: str
    ratio: float | None = None
    vs: str | None = None  # the figure the ratio is taken against
    note: str = ""
    repeats: int = 1
    spread: float = 0.0

    def __post_init__(self):
        if isinstance(self.value, Timing):
            timing = self.value
            self.value, self.repeats, self.spread = timing.median, len(timing.times), timing.spread


@dataclass(frozen=True)
class Run:
    quick: bool
    repeats: int
    device: torch.device
    min_seconds: float = 0.0  # cheap figures repeat until this much time was timed (max 50)
    options: dict = field(default_factory=dict)  # a group's own command-line settings (--grid-*)

    def pick(self, full, quick):
        return quick if self.quick else full

    def time(self, fn: Callable[[], object], warmup: int = 1) -> Timing:
        """Seconds of ``fn()`` over the repeats, after ``warmup`` untimed calls."""
        return self.time_pair(fn, warmup=warmup)[0]

    def time_pair(self, *fns: Callable[[], object], warmup: int = 1) -> tuple[Timing, ...]:
        """:meth:`time` of each of ``fns``, their repeats taken in turn (a, b, a, b, ...), so
        that a machine slowed down meanwhile slows all of them alike: for a ratio."""
        for _ in range(warmup):
            for fn in fns:
                fn()
        times: list[list[float]] = [[] for _ in fns]
        while len(times[0]) < self.repeats or (
            sum(map(sum, times)) < self.min_seconds and len(times[0]) < 50
        ):
            for fn, seconds in zip(fns, times, strict=True):
                self.sync()
                start = time.perf_counter()
                fn()
                self.sync()
                seconds.append(time.perf_counter() - start)
        return tuple(Timing(tuple(t)) for t in times)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class Skipped(Exception):
    """A group that cannot run here (e.g. no Java); its message is printed."""


def with_ratio(fig: Figure, baseline: Figure) -> Figure:
    """``fig`` with its ratio to ``baseline`` (medians; not a median of per-repeat ratios)."""
    fig.ratio, fig.vs = fig.value / baseline.value, baseline.name
    return fig


# -- inputs -----------------------------------------------------------------------------------


def generator_config(**lm_overrides) -> dict:
    """The caption generator's constructor args from ``model=merge`` with ``lm=small``
    (sizes overridden by ``lm_overrides``)."""
    from caplm.io import to_dict
    from caplm.models.caption_generator import CaptionGenerator
    from caplm.models.common import constructor_args

    lm = lm_preset(lm_overrides.pop("preset", "small"))
    lm.update(lm_overrides)
    cfg = OmegaConf.create(
        {
            "lm": lm,
            "model": OmegaConf.load(CONF_DIR / "model" / "merge.yaml"),
            "generation": OmegaConf.load(CONF_DIR / "generation" / "study.yaml"),
            "data": OmegaConf.load(CONF_DIR / "data" / "shapes.yaml"),  # the caption length
        }
    )
    return {**constructor_args(CaptionGenerator, to_dict(cfg.model)), **to_dict(cfg.generation)}


def lm_preset(name: str):
    """``conf/lm/<name>.yaml`` with its defaults list (a preset built on another) applied."""
    cfg = OmegaConf.load(CONF_DIR / "lm" / f"{name}.yaml")
    bases = [d for d in cfg.pop("defaults", []) if d != "_self_"]
    return OmegaConf.merge(*(lm_preset(b) for b in bases), cfg) if bases else cfg


def make_generator(run: Run, vocab_size: int, **lm_overrides):
    from caplm.models.caption_generator import CaptionGenerator

    model = CaptionGenerator(vocab_size, FEATURE_SIZE, **generator_config(**lm_overrides))
    return model.to(run.device)


def every_position_loss(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's loss with the output layer run at every position, padding included:
    the same value as ``batch_loss`` (which runs it on real positions only), more work."""
    import torch.nn.functional as F

    from caplm.data.text import PAD_ID

    logits, targets = model(batch["features"], batch["inputs"]), batch["targets"]
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_ID)
    return loss, (targets != PAD_ID).sum()


def hand_stepper(
    model, batch: dict, clip: float | None = None, loss: Callable | None = None
) -> Callable[[], None]:
    """One training step by hand: what training_step computes (minus logging), backward,
    gradient clipping to ``clip`` (None: none) and the model's own optimiser step.
    ``loss(model, batch)`` replaces the model's ``batch_loss``."""
    optimiser = model.configure_optimizers()
    batch_loss = model.batch_loss if loss is None else partial(loss, model)

    def step():
        loss, _ = batch_loss(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()

    return step


def random_captions(n: int, max_words: int, vocab_size: int, gen: torch.Generator) -> dict:
    """``inputs``/``targets`` (n, max_words + 1) of random words, 4 to ``max_words`` long
    (the longest first, so the width is always max_words + 1)."""
    from caplm.data.batching import pad_batch
    from caplm.data.shapes import MIN_WORDS
    from caplm.data.text import SPECIALS

    lengths = torch.randint(MIN_WORDS, max_words + 1, (n,), generator=gen)
    lengths[0] = max_words
    words = [torch.randint(len(SPECIALS), vocab_size, (int(k),), generator=gen) for k in lengths]
    return pad_batch(words)


def random_features(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(n, FEATURE_SIZE, generator=gen).relu()


STUDY_SIZES = dict(vocab=2500, embed=502, rnn=201, post_image=430, batch=128, steps=20,
                   features=4096)  # fmt: skip


def matmul_gflops(run: Run, n: int) -> Timing:
    """GFLOP/s of an n x n float32 matmul (2 n^3 flops): the machine's measured peak."""
    a, b = (torch.randn(n, n, device=run.device) for _ in range(2))
    t = run.time(lambda: a @ b)
    return Timing(tuple(2 * n**3 / x / 1e9 for x in t.times))
