"""Transferring a Transformer LM's prefix into a Transformer caption generator: what each
mode and part copies and freezes, the refusals across architectures and layers, ulmfit's
groups, and the LM cache's keys for Transformer configs."""

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from caplm import CONF_DIR
from caplm.data.text import SPECIALS, Vocabulary
from caplm.data.types import Corpus
from caplm.io import stable_hash
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.common import constructor_args
from caplm.models.language_model import LanguageModel
from caplm.models.prefix import TRANSFORMER_KEYS, PrefixConfig
from caplm.models.transfer.callback import (
    WeightTransfer,
    selected_names,
    state_arch,
    transfer_prefix,
)
from caplm.models.transfer.methods.ulmfit import group_names, ulmfit_groups
from caplm.models.transfer.modes import check_arch_parts, check_parts
from caplm.models.transfer.vocab import generator_vocabulary
from caplm.runtime.lm_cache import lm_identity

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
]

LM_VOCAB = Vocabulary(["star", "blue", "red", "circle", "the"])
CAPTION_VOCAB = Vocabulary(["red", "green", "star", "square"])  # shuffled, partly missing
VOCAB = generator_vocabulary(CAPTION_VOCAB, LM_VOCAB, "caption")
ROWS = VOCAB.index_in(LM_VOCAB)
#: A tiny Transformer prefix; embed_size != rnn_size, so it has an embedding projection.
SIZES = dict(arch="transformer", embed_size=8, rnn_size=16, num_layers=2, n_heads=2,
             ff_size=32, max_positions=12)  # fmt: skip
RNN_SIZES = dict(embed_size=8, rnn_size=16)
GEN_ONLY = dict(feature_size=5, post_image_size=6, min_len=1, max_len=6)


def lm_of(seed: int = 0, **kw) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel(len(LM_VOCAB), **(SIZES | kw))


def gen_of(seed: int = 1, vocab: Vocabulary = VOCAB, **kw) -> CaptionGenerator:
    torch.manual_seed(seed)
    return CaptionGenerator(len(vocab), **GEN_ONLY, **(SIZES | kw))


def prefix_params(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if n.startswith("prefix.")}


def test_state_arch_and_selected_names():
    lm, gen = lm_of(), gen_of()
    assert state_arch(lm.state_dict()) == "transformer"
    assert state_arch(LanguageModel(9, **RNN_SIZES).state_dict()) == "rnn"
    names = selected_names(gen, ["embedding"])
    assert names == [
        "prefix.embedding.weight",
        "prefix.embed_proj.weight",
        "prefix.embed_proj.bias",
    ]
    rnn = selected_names(gen, ["rnn"])
    assert rnn[0] == "prefix.positions.weight" and rnn[-2:] == ["prefix.norm.weight",
                                                                 "prefix.norm.bias"]  # fmt: skip
    assert set(names) | set(rnn) == set(prefix_params(gen))  # the default moves it all
    assert all(n.startswith("prefix.blocks.0.") for n in selected_names(gen, ["blocks:0"]))
    assert selected_names(gen, ["final_norm"]) == ["prefix.norm.weight", "prefix.norm.bias"]
    assert selected_names(gen, ["positions"]) == ["prefix.positions.weight"]
    assert selected_names(gen_of(positions="sinusoidal"), ["positions"]) == []


@pytest.mark.parametrize("mode", ["init", "frozen"])
def test_copy_modes_copy_embedding_rows_by_token_and_blocks_exactly(mode):
    lm, gen = lm_of(), gen_of()
    before = prefix_params(gen)
    stats = transfer_prefix(gen, mode, ["embedding", "rnn"], lm.state_dict(), ROWS)
    emb_lm, emb_gen = lm.prefix.embedding.weight, gen.prefix.embedding.weight
    for word in ["red", "star", *SPECIALS]:
        assert torch.equal(emb_gen[VOCAB.stoi[word]], emb_lm[LM_VOCAB.stoi[word]]), word
    for missing in ("green", "square"):  # not in the LM: kept at their random init
        assert torch.equal(emb_gen[VOCAB.stoi[missing]], before["prefix.embedding.weight"][
            VOCAB.stoi[missing]])  # fmt: skip
    lm_params, gen_params = dict(lm.named_parameters()), dict(gen.named_parameters())
    rest = [n for n in before if n != "prefix.embedding.weight"]
    assert any(".blocks.1." in n for n in rest) and "prefix.embed_proj.weight" in rest
    for name in rest:
        assert torch.equal(gen_params[name], lm_params[name]), name
        assert not torch.equal(before[name], lm_params[name]) or name.endswith(
            ("bias", "norm.weight", "ln_1.weight", "ln_2.weight")
        ), name  # the copy changed it (biases and LayerNorms start equal)
    assert (stats.rows, stats.rows_missing) == (2, 2)
    copied_rows = int((ROWS >= 0).sum())
    assert stats.params_transferred == copied_rows * 8 + sum(before[n].numel() for n in rest)
    frozen = mode == "frozen"
    assert all(p.requires_grad != frozen for n, p in gen_params.items() if n.startswith("prefix."))
    assert all(p.requires_grad for n, p in gen_params.items() if not n.startswith("prefix."))
    assert stats.params_frozen == (sum(p.numel() for p in before.values()) if frozen else 0)


def fit(gen, callback, steps: int = 3) -> None:
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(4, len(VOCAB), (12, 6), generator=g)
    inputs[:, 0] = 2
    targets = torch.roll(inputs, -1, 1)
    targets[:, -1] = 3
    feats = torch.randn(12, 5, generator=g)
    batches = [
        {"features": feats[i : i + 4], "inputs": inputs[i : i + 4], "targets": targets[i : i + 4]}
        for i in range(0, 12, 4)
    ]
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])  # fmt: skip
    trainer.fit(gen, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))


@pytest.mark.parametrize("mode", ["frozen", "random_frozen", "init"])
def test_training_leaves_a_frozen_transformer_prefix_bit_identical(mode):
    lm, gen = lm_of(), gen_of()
    lm_before = {k: v.clone() for k, v in lm.state_dict().items()}
    gen_before = prefix_params(gen)
    head_before = {n: p.detach().clone() for n, p in gen.named_parameters()
                   if not n.startswith("prefix.")}  # fmt: skip
    callback = WeightTransfer(mode, ["embedding", "rnn"], lm.state_dict(), ROWS)
    fit(gen, callback)
    after = prefix_params(gen)
    if mode == "init":  # copied, then trained: every block weight moved off the LM's
        moved = [n for n in after if ".blocks." in n and n.endswith("weight")]
        assert moved and all(not torch.equal(after[n], lm_before[n]) for n in moved)
    else:
        started_as = gen_before if mode == "random_frozen" else None
        for name, value in after.items():
            if started_as is not None:
                expected = started_as[name]
            elif name == "prefix.embedding.weight":
                expected = gen_before[name].clone()
                expected[ROWS >= 0] = lm_before[name][ROWS[ROWS >= 0]]
            else:
                expected = lm_before[name]
            assert torch.equal(value, expected), name
            assert not gen.get_parameter(name).requires_grad, name
        assert callback.stats.params_frozen == sum(p.numel() for p in after.values())
    if mode == "random_frozen":
        assert callback.stats.params_transferred == 0
        assert not torch.equal(after["prefix.blocks.0.attn.qkv.weight"],
                               lm_before["prefix.blocks.0.attn.qkv.weight"])  # fmt: skip
    head_after = dict(gen.named_parameters())
    assert all(not torch.equal(head_after[n], v) for n, v in head_before.items())  # trained
    assert all(torch.equal(lm.state_dict()[k], v) for k, v in lm_before.items())  # LM untouched


def test_random_frozen_freezes_without_copying_or_needing_an_lm():
    gen = gen_of()
    before = prefix_params(gen)
    stats = transfer_prefix(gen, "random_frozen", ["embedding", "rnn"])
    assert stats.params_transferred == 0
    assert stats.params_frozen == sum(v.numel() for v in before.values())
    for name, value in prefix_params(gen).items():
        assert torch.equal(value, before[name]) and not gen.get_parameter(name).requires_grad
    with pytest.raises(ValueError, match="needs a language model"):
        transfer_prefix(gen_of(), "init", ["embedding"])


@pytest.mark.parametrize("mode", ["init", "frozen"])
def test_block_range_moves_only_those_blocks(mode):
    lm, gen = lm_of(), gen_of()
    before = prefix_params(gen)
    transfer_prefix(gen, mode, ["blocks:0"], lm.state_dict(), ROWS)
    lm_params = dict(lm.named_parameters())
    block0 = [n for n in before if n.startswith("prefix.blocks.0.")]
    assert block0
    for name, value in prefix_params(gen).items():
        if name in block0:
            assert torch.equal(value, lm_params[name]), name
            assert gen.get_parameter(name).requires_grad == (mode == "init")
        else:  # block 1, the final norm, embedding and positions stay as initialised
            assert torch.equal(value, before[name]), name
            assert gen.get_parameter(name).requires_grad
    assert not torch.equal(
        gen.prefix.blocks[1].attn.qkv.weight, lm.prefix.blocks[1].attn.qkv.weight
    )
    # blocks (no range): every block and the final LayerNorm, nothing else.
    gen = gen_of()
    transfer_prefix(gen, "init", ["blocks", "positions"], lm.state_dict(), ROWS)
    for name, value in prefix_params(gen).items():
        from_lm = name.startswith(("prefix.blocks.", "prefix.norm.", "prefix.positions."))
        assert torch.equal(value, lm_params[name] if from_lm else before[name]), name


def test_block_ranges_beyond_the_model_or_empty_are_refused():
    lm, gen = lm_of(), gen_of()
    with pytest.raises(ValueError, match=r"blocks:0-5 names block 5, but the Transformer has "
                       r"2 block\(s\), 0 to 1"):  # fmt: skip
        transfer_prefix(gen, "init", ["blocks:0-5"], lm.state_dict(), ROWS)
    with pytest.raises(ValueError, match=r"has 2 block\(s\)"):
        transfer_prefix(gen, "random_frozen", ["blocks:2"])
    with pytest.raises(ValueError, match=r"has 2 block\(s\)"):
        check_arch_parts(["embedding", "blocks:1-2"], "transformer", 2)
    check_arch_parts(["embedding", "blocks:0-1"], "transformer", 2)
    with pytest.raises(ValueError, match="empty range; write blocks:0-1"):
        check_parts(["blocks:1-0"])
    assert all(p.requires_grad for p in gen.parameters())  # nothing half-done


def test_transfer_across_architectures_names_both():
    tf_lm, tf_gen = lm_of(), gen_of()
    rnn_lm = LanguageModel(len(LM_VOCAB), **RNN_SIZES)
    rnn_gen = CaptionGenerator(len(VOCAB), **GEN_ONLY, **RNN_SIZES)
    describe = "(lm=small: gru; model: transformer)"
    with pytest.raises(ValueError, match=r"language model's prefix is an RNN \(arch: rnn\) but "
                       r"the caption generator's is a Transformer \(arch: transformer\)"
                       r".*\(lm=small: gru; model: transformer\)"):  # fmt: skip
        transfer_prefix(tf_gen, "init", ["embedding", "rnn"], rnn_lm.state_dict(), ROWS, describe)
    with pytest.raises(ValueError, match=r"language model's prefix is a Transformer \(arch: "
                       r"transformer\) but the caption generator's is an RNN \(arch: rnn\)"):  # fmt: skip
        transfer_prefix(rnn_gen, "frozen", ["embedding", "rnn"], tf_lm.state_dict(), ROWS)
    with pytest.raises(ValueError, match="an RNN.*a Transformer"):  # even the embedding alone
        transfer_prefix(tf_gen, "init", ["embedding"], rnn_lm.state_dict(), ROWS)
    assert all(p.requires_grad for p in rnn_gen.parameters())  # the refusal froze nothing


def test_part_names_of_the_other_architecture_are_refused_clearly():
    tf_gen = gen_of()
    rnn_gen = CaptionGenerator(len(VOCAB), **GEN_ONLY, **RNN_SIZES)
    with pytest.raises(ValueError, match=r"'rnn_recurrent' is a part of an RNN prefix, not of a "
                       r"Transformer one \(arch: transformer\), whose parts are embedding, rnn, "
                       r"positions, blocks, final_norm, output, blocks:I-J"):  # fmt: skip
        transfer_prefix(tf_gen, "random_frozen", ["rnn_recurrent"])
    with pytest.raises(ValueError, match="'init_state' is a part of an RNN prefix"):
        check_arch_parts(["init_state"], "transformer", 2)
    with pytest.raises(ValueError, match=r"'blocks:0' is a part of a Transformer prefix, not of "
                       r"an RNN one"):  # fmt: skip
        transfer_prefix(rnn_gen, "random_frozen", ["blocks:0"])
    with pytest.raises(ValueError, match="'positions' is a part of a Transformer prefix"):
        check_arch_parts(["embedding", "positions"], "rnn")


def test_other_layers_or_sizes_are_refused_by_name():
    gen = gen_of()
    deeper = lm_of(num_layers=3)
    with pytest.raises(ValueError, match=r"differ in their layers \(only the language model has "
                       r"prefix\.blocks\.2\."):  # fmt: skip
        transfer_prefix(gen, "init", ["blocks"], deeper.state_dict(), ROWS)
    transfer_prefix(gen, "init", ["blocks:0-1"], deeper.state_dict(), ROWS)  # a range can fit
    assert torch.equal(gen.prefix.blocks[1].mlp.fc.weight, deeper.prefix.blocks[1].mlp.fc.weight)
    with pytest.raises(ValueError, match=r"only the caption generator has prefix\.positions"):
        transfer_prefix(gen_of(), "init", ["rnn"], lm_of(positions="sinusoidal").state_dict(), ROWS)
    with pytest.raises(ValueError, match=r"cannot transfer prefix\.positions\.weight.*\(16, 16\)"
                       r".*\(12, 16\)"):  # fmt: skip
        transfer_prefix(gen_of(), "init", ["rnn"], lm_of(max_positions=16).state_dict(), ROWS)
    with pytest.raises(ValueError, match=r"cannot transfer prefix\.blocks\.0\.mlp\.fc\.weight"):
        transfer_prefix(gen_of(), "init", ["blocks"], lm_of(ff_size=64).state_dict(), ROWS)


def test_sinusoidal_prefixes_transfer_without_positions():
    lm, gen = lm_of(positions="sinusoidal"), gen_of(positions="sinusoidal")
    stats = transfer_prefix(gen, "frozen", ["embedding", "rnn"], lm.state_dict(), ROWS)
    lm_params = dict(lm.named_parameters())
    for name, value in prefix_params(gen).items():
        if name != "prefix.embedding.weight":
            assert torch.equal(value, lm_params[name]), name
    assert stats.params_frozen == sum(p.numel() for p in gen.prefix.parameters())


def test_ulmfit_groups_of_transformer_parts_are_disjoint():
    gen = gen_of()
    every = [n for n, _ in gen.named_parameters()]

    def groups(parts):
        found = group_names(gen, parts)
        flat = [n for g in found for n in g]
        assert sorted(flat) == sorted(every) and len(flat) == len(set(flat))  # no name twice
        return found

    head, rnn, emb = groups(["embedding", "positions", "blocks"])
    assert set(rnn) == {n for n in every if n.startswith(("prefix.blocks.", "prefix.norm."))}
    assert set(emb) == {"prefix.embedding.weight", "prefix.embed_proj.weight",
                        "prefix.embed_proj.bias", "prefix.positions.weight"}  # fmt: skip
    assert all(not n.startswith("prefix.") for n in head) and "output.weight" in head
    # rnn is the whole sequence model: it takes the positions (the upper group wins a tie).
    for parts in (["embedding", "rnn"], ["embedding", "positions", "rnn"]):
        head, rnn, emb = groups(parts)
        assert "prefix.positions.weight" in rnn and "prefix.positions.weight" not in emb
        assert set(emb) == {"prefix.embedding.weight", "prefix.embed_proj.weight",
                            "prefix.embed_proj.bias"}  # fmt: skip
    head, rnn, emb = groups(["embedding", "blocks:1"])
    assert rnn and all(n.startswith("prefix.blocks.1.") for n in rnn)
    assert any(n.startswith("prefix.blocks.0.") for n in head) and "prefix.norm.weight" in head
    assert ulmfit_groups(["blocks:0-1"]) == ["head", "rnn"]
    assert ulmfit_groups(["positions"]) == ["head", "embedding"]
    assert ulmfit_groups(["final_norm", "embedding"]) == ["head", "rnn", "embedding"]


# --- configs and the LM cache ----------------------------------------------------------

SENTENCES = [s.split() for s in ["a red circle", "a blue square", "two red squares"]]
CORPUS = Corpus("toy", train=SENTENCES * 3, val=SENTENCES[:1])
CORPUS_VOCAB = Vocabulary.build(SENTENCES)


def identity(lm_cfg) -> dict:
    return lm_identity(lm_cfg, CORPUS, CORPUS_VOCAB, seed=1)


def test_lm_cache_keys_tell_transformers_apart_and_keep_rnn_keys(make_cfg):
    small = make_cfg(["lm=small"]).lm
    tf = make_cfg(["lm=transformer_small"]).lm
    rnn_id, tf_id = identity(small), identity(tf)
    assert stable_hash(rnn_id) != stable_hash(tf_id)
    assert "arch" not in rnn_id["lm"] and not set(TRANSFORMER_KEYS) & set(rnn_id["lm"])
    assert tf_id["lm"]["arch"] == "transformer" and tf_id["lm"]["n_heads"] == 2
    assert "name" not in tf_id["lm"]
    # An RNN config from before `arch` existed has the same key.
    old = OmegaConf.create(OmegaConf.to_container(small, resolve=True))
    with open_dict(old):
        del old["arch"]
    assert stable_hash(identity(old)) == stable_hash(rnn_id)
    # Each Transformer setting counts.
    for key, value in [("n_heads", 4), ("positions", "sinusoidal"), ("max_positions", 48)]:
        changed = tf.copy()
        with open_dict(changed):
            changed[key] = value
        assert stable_hash(identity(changed)) != stable_hash(tf_id), key
    medium = identity(make_cfg(["lm=transformer_medium"]).lm)
    assert medium["lm"]["n_heads"] == 4 and stable_hash(medium) != stable_hash(tf_id)


def test_the_lm_presets_build_transformers_of_the_advertised_size():
    small = OmegaConf.load(CONF_DIR / "lm" / "transformer_small.yaml")
    lm = LanguageModel(50, **constructor_args(LanguageModel, small))
    assert lm.prefix.arch == "transformer" and len(lm.prefix.blocks) == 2
    blocks = sum(p.numel() for n, p in lm.prefix.named_parameters()
                 if n.startswith(("blocks.", "norm.")))  # fmt: skip
    assert blocks == 100_096 and lm.prefix.positions.weight.numel() == 4_096


def test_model_config_follows_a_transformer_lm_and_its_weights_fit(make_cfg):
    cfg = make_cfg(["lm=transformer_small"])
    assert cfg.model.arch == "transformer" and cfg.model.rnn_type is None
    for key in TRANSFORMER_KEYS:
        assert cfg.model[key] == cfg.lm[key], key
    assert PrefixConfig.of(cfg.model).summary() == PrefixConfig.of(cfg.lm).summary()
    torch.manual_seed(0)
    lm = LanguageModel(len(LM_VOCAB), **constructor_args(LanguageModel, cfg.lm))
    gen = CaptionGenerator(len(VOCAB), feature_size=5,
                           **constructor_args(CaptionGenerator, cfg.model),
                           **cfg.generation)  # fmt: skip
    stats = transfer_prefix(gen, "frozen", list(cfg.transfer.parts), lm.state_dict(), ROWS)
    assert stats.params_frozen == sum(p.numel() for p in gen.prefix.parameters())
    lm_params = dict(lm.named_parameters())
    assert torch.equal(
        gen.prefix.blocks[1].mlp.proj.weight, lm_params["prefix.blocks.1.mlp.proj.weight"]
    )
    rnn = make_cfg(["lm=small"])
    assert rnn.model.arch == "rnn" and rnn.model.rnn_type == "gru"
    assert all(rnn.model[key] is None for key in TRANSFORMER_KEYS)
