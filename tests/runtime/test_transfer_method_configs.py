"""The transfer methods' settings are checked at composition time, each problem naming the
option (check_config, before a job does any work)."""

import pytest

from caplm.runtime.config import ConfigError, check_config


def _problems(cfg) -> str:
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    return str(err.value)


@pytest.mark.parametrize("mode", ["l2_sp", "aux_lm", "wise_ft", "ulmfit"])
def test_each_method_composes_and_passes(make_cfg, mode):
    cfg = make_cfg([f"transfer={mode}"])
    check_config(cfg)
    assert cfg.transfer.mode == mode and list(cfg.transfer.parts) == ["embedding", "rnn"]


def test_finer_parts_compose_with_the_methods_and_the_vocabulary_policies(make_cfg):
    check_config(make_cfg(["transfer=l2_sp", "transfer.parts=[rnn_input,rnn_bias,output]",
                           "transfer.vocab_policy=caption"]))  # fmt: skip
    check_config(make_cfg(["transfer=init", "transfer.parts=[embedding,rnn_recurrent,init_state]"]))


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["transfer=wise_ft", "transfer.alphas=[0,0.5,1.2]"], "transfer.alphas: transfer.alphas=[0, 0.5, 1.2]; must be a non-empty list of numbers in [0, 1]"),
        (["transfer=wise_ft", "transfer.alphas=[]"], "transfer.alphas:"),
        (["transfer=wise_ft", "transfer.parts=[]"], "transfer.parts: transfer=wise_ft transfers nothing"),
        (["transfer=wise_ft", "transfer.select=cider"], "transfer.select: transfer.select='cider'; choose one of loss, bleu"),
        (["transfer=init", "transfer.parts=[embedding,decoder]"], "transfer.parts has ['decoder']; known parts: embedding, rnn, rnn_input"),
        (["transfer=ulmfit", "transfer.parts=[output]"], "transfer.parts: transfer=ulmfit with transfer.parts=['output'] has one layer group (head): its groups collapse"),
        (["transfer=ulmfit", "transfer.lr_factor=0.5"], "transfer.lr_factor: transfer.lr_factor=0.5 for transfer=ulmfit; must be a number >= 1"),
        (["transfer=l2_sp", "transfer.alpha=-1"], "transfer.alpha: transfer.alpha=-1 for transfer=l2_sp; must be a number >= 0"),
        (["transfer=aux_lm", "transfer.gamma=x"], "transfer.gamma: transfer.gamma='x'"),
        (["transfer=frozen", "transfer.parts=[rnn,output]"], "['output'] cannot be frozen"),
        (["transfer=init", "+transfer.alpha=0.1"], "transfer.alpha: unknown setting"),
    ],
)  # fmt: skip
def test_bad_method_settings_fail_naming_the_option(make_cfg, overrides, expected):
    assert expected in _problems(make_cfg(overrides))
