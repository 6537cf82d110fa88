"""Shared fixtures: real configs composed from conf/, shrunk to tiny sizes for speed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from caplm import CONF_DIR
from caplm.runtime import config  # noqa: F401  (registers the resolvers)

os.environ.setdefault("WANDB_MODE", "disabled")

#: Overrides that make a whole job take seconds on a CPU (tests only).
TINY = [
    "data.shapes.num_train=24",
    "data.shapes.num_val=8",
    "data.shapes.num_test=8",
    "data.shapes.image_size=32",
    "data/encoder=small_cnn",
    "data.encoder.image_size=32",
    "model.fit.batch_size=16",
    "corpus.max_val_sentences=40",
    "lm.embed_size=16",
    "lm.rnn_size=24",
    "lm.fit.max_epochs=2",
    "lm.fit.batch_size=32",
    "model.post_image_size=16",
    "model.fit.max_epochs=2",
    "eval.meteor=false",
    "eval.spice=off",
    "eval.lm_samples=10",
    "eval.show=0",
    "trainer.enable_progress_bar=false",
    "logger=none",
]
#: Extra overrides for corpus=shapes_extra (its pool is captions of num_scenes scenes).
TINY_EXTRA = ["corpus.num_scenes=100", "corpus.val_scenes=4"]
#: TINY for data=scenes (its pictures need 64 px to draw the icons); the test passes data=scenes.
TINY_SCENES = [
    *(
        o.replace("data.shapes.", "data.scenes.")
        for o in TINY
        if o.startswith("data.shapes.") and "image_size" not in o
    ),  # fmt: skip
    "data.scenes.image_size=64",
    *(o for o in TINY if not o.startswith("data.shapes.")),
    "data.encoder.pool_grid=1",
]


def compose_config(tmp: Path, overrides: list[str], job: str = "job", config_name: str = "train"):
    """The composed config for ``overrides`` (on top of TINY), with outputs under ``tmp``;
    ``config_name="train_lm"`` composes an LM-only job (``python -m caplm.lm``)."""
    tiny = TINY
    if "data=scenes" in overrides:
        tiny = TINY_SCENES
    if config_name != "train":
        tiny = [o for o in tiny if not o.startswith("model.")]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name,
            overrides=[*tiny, *overrides, f"paths.data_dir={tmp}/data"],
            return_hydra_config=True,
        )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / job)
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    return lambda overrides=(), job="job": compose_config(tmp_path, list(overrides), job)


@pytest.fixture
def make_lm_cfg(tmp_path):
    return lambda overrides=(), job="lm_job": compose_config(
        tmp_path, list(overrides), job, "train_lm"
    )
