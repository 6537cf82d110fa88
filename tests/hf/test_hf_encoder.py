"""data/encoder=hf: tiny CLIP vision / ViT / DINOv2 towers saved here with their image
processors (no download); data/encoder=timm's clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caplm.data.encoders import build_encoder
from caplm.hf import transformers

TOWERS = ("clip_vision", "vit", "dinov2")


def _tower(folder, kind: str):
    tf = transformers()
    torch.manual_seed(0)
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=32, image_size=32, patch_size=8)  # fmt: skip
    config = {"clip_vision": tf.CLIPVisionConfig, "vit": tf.ViTConfig,
              "dinov2": tf.Dinov2Config}[kind](**small)  # fmt: skip
    tf.AutoModel.from_config(config).save_pretrained(folder)
    processor = tf.ViTImageProcessor(size={"height": 32, "width": 32},
                                     image_mean=[0.5] * 3, image_std=[0.5] * 3)  # fmt: skip
    processor.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", TOWERS)
def test_pooled_and_patch_vectors_with_the_towers_own_preprocessing(tmp_path, kind):
    folder = _tower(tmp_path / kind, kind)
    images = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    cfg = {"name": "hf", "path": str(folder), "batch_size": 2, "device": "cpu"}
    pooled = build_encoder(cfg)
    both = build_encoder({**cfg, "regions": True})
    assert pooled.feature_size == 16 and both.regions == 16 and both.feature_size == 16 * 17
    a, b = pooled.encode(images), both.encode(images)
    assert a.shape == (3, 16) and b.shape == (3, 16 * 17) and a.dtype == np.float32
    np.testing.assert_allclose(b[:, :16], a, rtol=1e-5, atol=1e-6)  # pooled first
    # the patch tokens are the model's, from its processor's pixels
    tf = transformers()
    model = tf.AutoModel.from_pretrained(str(folder)).eval()
    pixels = tf.AutoImageProcessor.from_pretrained(str(folder), use_fast=False)(
        images=list(images), return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        tokens = model(pixel_values=pixels).last_hidden_state
    np.testing.assert_allclose(b[:, 16:], tokens[:, -16:].flatten(1).numpy(), rtol=1e-4, atol=1e-5)
    # the identity: config and weights digests, preprocessing, regions
    ident = both.identity()
    assert ident["regions"] and ident["model"]["config"] and ident != pooled.identity()


def test_timm_is_a_clear_error():
    with pytest.raises(ImportError, match="torchvision.*data/encoder=hf"):
        build_encoder({"name": "timm", "batch_size": 1, "device": "cpu"})
