"""The transfer modes are registered classes: each module of caplm/models/transfer/methods/
is one mode, its keys are its yaml's, and the report names modes without loading them."""

from __future__ import annotations

import pytest
import yaml

from caplm import CONF_DIR
from caplm.models.transfer import modes
from caplm.models.transfer.modes import TRANSFER_KEYS, Registry, TransferMode, get_mode, mode_names


def test_the_registry_finds_every_mode_the_study_first():
    assert mode_names() == ("none", "init", "frozen", "random_frozen",
                            "aux_lm", "l2_sp", "lora", "ulmfit", "wise_ft")  # fmt: skip
    assert [m for m in mode_names() if get_mode(m).uses_lm] == [
        "init", "frozen", "aux_lm", "l2_sp", "lora", "ulmfit", "wise_ft"]  # fmt: skip
    assert [m for m in mode_names() if get_mode(m).freezes] == [
        "frozen",
        "random_frozen",
        "wise_ft",
    ]


@pytest.mark.parametrize("mode", mode_names())
def test_each_modes_keys_are_its_yamls(make_cfg, mode):
    cfg = make_cfg([f"transfer={mode}"])
    assert cfg.transfer.mode == mode
    assert set(cfg.transfer) == {*TRANSFER_KEYS, *get_mode(mode).keys}
    own = yaml.safe_load((CONF_DIR / "transfer" / f"{mode}.yaml").read_text())
    assert get_mode(mode).defaults() == {k: own[k] for k in get_mode(mode).keys}


def test_every_transfer_yaml_is_a_registered_mode():
    names = {yaml.safe_load(p.read_text())["mode"] for p in (CONF_DIR / "transfer").glob("*.yaml")}
    assert names == set(mode_names())


def test_an_unknown_mode_is_refused_with_the_known_ones():
    with pytest.raises(
        ValueError, match=r"transfer.mode='frozn' is unknown; choose one of none, init"
    ):
        get_mode("frozn")


def test_a_module_must_hold_one_mode_named_as_itself(tmp_path, monkeypatch):
    pkg = tmp_path / "bad_modes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mine.py").write_text(
        "from caplm.models.transfer.modes import TransferMode\n"
        "class Other(TransferMode):\n    name = 'other'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"mine.py must define one TransferMode subclass whose "
                       r"name is 'mine' \(its module's\); it defines \['other'\]"):  # fmt: skip
        Registry("bad_modes").names()


def test_checks_are_the_modes_own():
    assert get_mode("l2_sp").problems({"parts": ["rnn"], "alpha": -1, "beta": 0}) == [
        ("alpha", "transfer.alpha=-1 for transfer=l2_sp; must be a number >= 0")]  # fmt: skip
    assert TransferMode().problems({"parts": []}) == []
    assert isinstance(modes.REGISTRY, Registry)
