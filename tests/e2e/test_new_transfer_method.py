"""Adding a transfer method is one module plus one yaml: a toy method, in a registry and a
config folder of its own, is checked, trained with and reported by an unchanged job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from caplm import CONF_DIR
from caplm.models.transfer import modes
from caplm.results import RESULTS_FILE
from caplm.runtime.config import ConfigError, check_config
from caplm.train import run
from tests.conftest import TINY

TOY = '''
"""A toy method: init's copy, plus ``weight`` x the output layer's squared weights."""
from lightning.pytorch.callbacks import Callback

from caplm.models.transfer.modes import TransferMode

CALLS = []


class Penalty(Callback):
    name = "toy"

    def __init__(self, weight, lm_state):
        self.weight, self.lm_keys = weight, sorted(lm_state)

    def setup(self, trainer, pl_module, stage):
        pl_module.loss_terms.append(self)

    def __call__(self, module, batch):
        CALLS.append(self.lm_keys)
        return self.name, self.weight * (module.output.weight ** 2).sum()


class Toy(TransferMode):
    name = "toy"
    needs_parts = True
    keys = ("weight",)

    def check(self, t):
        return self.number(t, "weight", lambda v: v >= 0, "a number >= 0")

    def callbacks(self, t, lm_state=None, row_index=None):
        return [Penalty(t["weight"], lm_state)]
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A registry of one package holding toy.py, and a copy of conf/ with transfer/toy.yaml."""
    (tmp_path / "toy_modes").mkdir()
    (tmp_path / "toy_modes" / "__init__.py").write_text("")
    (tmp_path / "toy_modes" / "toy.py").write_text(TOY)
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "transfer" / "toy.yaml").write_text(
        "defaults:\n  - frozen\n  - _self_\n\nmode: toy\nweight: 0.01\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(modes, "REGISTRY", modes.Registry("toy_modes"))

    def make(overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("train", overrides=[*TINY, "transfer=toy", *overrides,
                                              f"paths.data_dir={tmp_path}/data"],
                          return_hydra_config=True)  # fmt: skip
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "job")
        return cfg

    return make


def test_a_toy_method_is_checked_trained_with_and_reported(toy):
    with pytest.raises(ConfigError, match=r"transfer.weight: transfer.weight=-1 for "
                       r"transfer=toy; must be a number >= 0 \(set in conf/transfer/toy.yaml"):  # fmt: skip
        check_config(toy(["transfer.weight=-1"]))
    with pytest.raises(ConfigError, match=r"transfer=toy transfers nothing"):
        check_config(toy(["transfer.parts=[]"]))

    cfg = toy([])
    results = run(cfg)
    import toy_modes.toy as module

    assert module.CALLS and "output.weight" in module.CALLS[0]  # its loss term got the LM
    saved = json.loads((Path(cfg.paths.output_dir) / RESULTS_FILE).read_text())
    assert saved["job/transfer"] == results["job/transfer"] == "toy"
    assert results["transfer/params_transferred"] > 0 and results["transfer/params_frozen"] == 0
