"""``data/encoder=hf``: a Hugging Face vision tower (CLIP / SigLIP vision, ViT, DINOv2: what
``AutoModel`` loads) read from the local folder ``data.encoder.path``, never downloaded.

Each image goes through the model's own preprocessing (``AutoImageProcessor`` of the folder:
its resize, crop and normalisation) and the model; the features are its pooled vector
(``pooler_output`` where the model has one, else the first token) and, with ``regions: true``,
its patch tokens after it: ``[pooled (D), patch_1 (D), ..., patch_N (D)]`` flattened, N the
model's ``(image_size / patch_size)^2`` patches (``encoder.regions``, ``encoder.region_size``),
for architectures that attend over regions.

The features are cached by the encoder's identity: the folder's config digest, the digest of
its other files (weights, preprocessing) and the preprocessing's settings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from caplm.hf import folder_identity, local_folder, transformers
from caplm.io import stable_hash

#: ``data.encoder`` keys of ``name: hf`` beyond every encoder's.
HF_ENCODER_KEYS = ("path", "regions")


class HFImageEncoder:
    def __init__(self, cfg: dict, device: torch.device):
        tf = transformers()
        folder = local_folder(cfg.get("path"), "data.encoder.path")
        self.batch_size = int(cfg.get("batch_size") or 32)
        self.with_regions = bool(cfg.get("regions", False))
        self.device = device
        self.processor = tf.AutoImageProcessor.from_pretrained(
            str(folder), local_files_only=True, use_fast=False
        )
        model = tf.AutoModel.from_pretrained(str(folder), local_files_only=True)
        if hasattr(model, "vision_model") and not hasattr(model, "embeddings"):
            model = model.vision_model  # a two-tower model (CLIP, SigLIP): its image tower
        self.model = model.to(self.device).eval()
        config = getattr(model.config, "vision_config", model.config)
        self.region_size = int(config.hidden_size)
        size, patch = config.image_size, config.patch_size
        self.regions = (size // patch) ** 2 if self.with_regions else 0
        self.feature_size = self.region_size * (1 + self.regions)
        self._identity = {
            "name": "hf",
            "model": folder_identity(folder),
            "preprocess": stable_hash(self.processor.to_dict()),
            "regions": self.with_regions,
        }

    def identity(self) -> dict:
        return dict(self._identity)

    def fit(self, images) -> None:
        """A pretrained tower needs no fitting."""

    @torch.inference_mode()
    def encode(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch_size):
            chunk = [np.asarray(img) for img in images[i : i + self.batch_size]]
            for img in chunk:
                if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
                    raise ValueError(f"images must be RGB uint8 arrays (H, W, 3); got "
                                     f"{img.dtype} {img.shape}")  # fmt: skip
            pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"]
            result = self.model(pixel_values=pixels.to(self.device))
            tokens = result.last_hidden_state
            pooled = getattr(result, "pooler_output", None)
            if pooled is None:
                pooled = tokens[:, 0]
            parts = [pooled]
            if self.with_regions:
                parts.append(tokens[:, -self.regions :].flatten(1))  # the patch tokens, last
            out.append(torch.cat(parts, 1).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.feature_size), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)
