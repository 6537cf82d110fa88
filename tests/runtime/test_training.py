"""caplm.runtime.training: the Trainer's stopping and checkpoints from ``fit`` settings, and a
fit that is done once and resumed or reloaded after."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from caplm.data.datamodules import TextDataModule
from caplm.data.text import Vocabulary
from caplm.data.types import Corpus
from caplm.models.common import constructor_args
from caplm.models.language_model import LanguageModel
from caplm.runtime.training import DONE, fit, make_trainer

SENTENCES = [s.split() for s in ["a red circle", "a blue square", "two red squares"]] * 4


def stoppers(trainer):
    return [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]


def test_fit_settings_reach_the_trainer(make_cfg, tmp_path):
    cfg = make_cfg()
    fit_cfg = {"max_epochs": 3, "patience": 2, "early_stopping": True, "gradient_clip_val": 1.5}
    trainer, _ = make_trainer(cfg.trainer, tmp_path, fit_cfg)
    assert trainer.max_epochs == 3 and trainer.gradient_clip_val == 1.5
    assert [s.patience for s in stoppers(trainer)] == [2]
    assert trainer.checkpoint_callback.dirpath == str(tmp_path)
    no_stop, _ = make_trainer(cfg.trainer, tmp_path, {**fit_cfg, "early_stopping": False})
    assert stoppers(no_stop) == []
    null_patience, _ = make_trainer(cfg.trainer, tmp_path, {**fit_cfg, "patience": None})
    assert stoppers(null_patience) == []


def test_fit_monitor_picks_what_the_checkpoint_and_the_stopping_go_by(make_cfg, tmp_path):
    cfg = make_cfg()
    fit_cfg = {"max_epochs": 3, "patience": 2}
    study, _ = make_trainer(cfg.trainer, tmp_path, fit_cfg)  # no monitor key: val/loss
    bleu, _ = make_trainer(cfg.trainer, tmp_path, {**fit_cfg, "monitor": "val/BLEU-4"})
    for trainer, monitor, mode in ((study, "val/loss", "min"), (bleu, "val/BLEU-4", "max")):
        checkpoint, [stopper] = trainer.checkpoint_callback, stoppers(trainer)
        assert (checkpoint.monitor, checkpoint.mode) == (monitor, mode)
        assert (stopper.monitor, stopper.mode) == (monitor, mode)


def lm_fit(cfg, ckpt_dir, keep="last"):
    vocab = Vocabulary.build(SENTENCES)
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=len(vocab), **constructor_args(LanguageModel, cfg.lm))
    data = TextDataModule(Corpus("toy", SENTENCES, SENTENCES[:3]), vocab, batch_size=4, seed=1)
    trainer, history = make_trainer(cfg.trainer, ckpt_dir, cfg.lm.fit)
    return model, fit(trainer, model, data, ckpt_dir, history, keep=keep)


def manual_val_loss(model, data) -> float:
    """Token-mean validation loss of ``model``, computed here by hand."""
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in data.val_dataloader():
            loss, n = model.batch_loss(batch)
            total, tokens = total + float(loss) * int(n), tokens + int(n)
    return total / tokens


def test_fit_records_each_epoch_and_keeps_the_chosen_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg()  # lm.fit.max_epochs=2 (tests' tiny settings)
    model, record = lm_fit(cfg, tmp_path, keep="last")
    assert record["epochs"] == 2 and [r["epoch"] for r in record["history"]] == [1, 2]
    # each row holds its own epoch's validation loss (not the epoch before's)
    model.eval()
    data = TextDataModule(Corpus("toy", SENTENCES, SENTENCES[:3]), Vocabulary.build(SENTENCES), 4)
    data_loss = manual_val_loss(model, data)
    assert abs(record["history"][-1]["val/loss"] - data_loss) < 1e-5
    assert record["history"][0]["val/loss"] != record["history"][1]["val/loss"]
    assert record["checkpoint"] == "last.ckpt" and (tmp_path / DONE).is_file()
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved["state_dict"][name]), name


def test_a_finished_fit_is_reloaded_not_trained_again(make_cfg, tmp_path):
    cfg = make_cfg()
    trained, record = lm_fit(cfg, tmp_path, keep="best")
    assert record["checkpoint"] == "best.ckpt"
    again, second = lm_fit(cfg, tmp_path, keep="best")  # a fresh init, then the done record
    assert second == record
    for name, value in trained.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name


@pytest.mark.parametrize(
    "losses, max_epochs, capped",
    [
        ([3.0, 2.0, 1.0], 3, True),  # ran all epochs, the last one the best: still improving
        ([3.0, 1.0, 2.0], 3, False),  # the best was before the end
        ([3.0, 2.0], 3, False),  # stopped early
        ([2.0, 2.0], 2, True),  # a tie with the best still counts as not yet worse
        ([], 0, False),  # an untrained LM (max_epochs 0)
    ],
)
def test_ended_at_cap_flags_a_fit_stopped_while_still_improving(losses, max_epochs, capped):
    from caplm.runtime.training import MONITOR, ended_at_cap

    history = [{"epoch": i + 1, MONITOR: v} for i, v in enumerate(losses)]
    assert ended_at_cap(history, max_epochs) is capped


def test_a_fit_by_bleu_is_capped_while_its_bleu_still_rises():
    from caplm.runtime.training import ended_at_cap, fit_monitor

    history = [{"val/loss": v, "val/BLEU-4": b} for v, b in ((3.0, 0.1), (2.0, 0.2), (2.5, 0.3))]
    assert ended_at_cap(history, 3, "val/BLEU-4") is True  # the loss rose, the BLEU did not fall
    assert ended_at_cap(history, 3) is False
    assert fit_monitor({"max_epochs": 3}) == "val/loss"
    assert fit_monitor({"monitor": "val/BLEU-4"}) == "val/BLEU-4"


def test_a_capped_fit_is_warned_about_naming_the_setting_to_raise(caplog):
    from caplm.runtime.training import MONITOR, warn_if_capped

    improving = [{MONITOR: 3.0}, {MONITOR: 2.0}]
    with caplog.at_level("WARNING", logger="caplm.runtime.training"):
        assert warn_if_capped("LM abc", improving, 2, "lm.fit.max_epochs") is True
        assert warn_if_capped("LM abc", improving, 5, "lm.fit.max_epochs") is False
    assert caplog.text.count("stopped at its cap") == 1
    assert "LM abc stopped at its cap of 2 epochs" in caplog.text
    assert "raise lm.fit.max_epochs" in caplog.text


def test_trainer_compile_compiles_the_loss_for_the_fit_and_trains_alike(make_cfg, tmp_path):
    # aot_eager: torch.compile's tracing and autograd without a C++ compiler (inductor's
    # default, for a GPU, is what `make gpu-check` times)
    from omegaconf import open_dict

    from caplm.runtime.training import CompileStep

    plain_cfg, compiled_cfg = make_cfg(), make_cfg()
    with open_dict(compiled_cfg):
        compiled_cfg.trainer.compile = "aot_eager"
    trainer, _ = make_trainer(compiled_cfg.trainer, tmp_path / "t", compiled_cfg.lm.fit)
    assert [c.backend for c in trainer.callbacks if isinstance(c, CompileStep)] == ["aot_eager"]
    from torch._dynamo.utils import counters

    plain, plain_record = lm_fit(plain_cfg, tmp_path / "plain")
    counters.clear()
    compiled, record = lm_fit(compiled_cfg, tmp_path / "compiled")
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo traced the loss
    assert "batch_loss" not in vars(compiled)  # the plain method again after the fit
    assert record["epochs"] == plain_record["epochs"]
    for (name, a), (_, b) in zip(
        plain.state_dict().items(), compiled.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5), name
