import numpy as np
import torch

from caplm.data.datamodules import CaptionDataModule, TextDataModule, pad_batch
from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, Vocabulary
from caplm.data.types import CaptionDataset, CaptionImage, Corpus


def test_pad_batch_shifts_targets_and_pads():
    batch = pad_batch([torch.tensor([5, 6, 7]), torch.tensor([8])])
    assert batch["inputs"].tolist() == [[BOS_ID, 5, 6, 7], [BOS_ID, 8, PAD_ID, PAD_ID]]
    assert batch["targets"].tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]


def test_pad_batch_on_random_batches_with_empty_sentences():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        lengths = torch.randint(0, 12, (int(torch.randint(1, 9, (1,), generator=gen)),),
                                generator=gen).tolist()  # fmt: skip
        sentences = [torch.randint(4, 50, (n,), generator=gen) for n in lengths]
        batch = pad_batch(sentences)
        assert batch["inputs"].shape == batch["targets"].shape == (len(lengths), max(lengths) + 1)
        for row, ids in enumerate(sentences):
            n = len(ids)
            assert batch["inputs"][row].tolist() == [BOS_ID, *ids.tolist()] + [PAD_ID] * (
                max(lengths) - n
            )
            assert batch["targets"][row].tolist() == [*ids.tolist(), EOS_ID] + [PAD_ID] * (
                max(lengths) - n
            )


def test_text_datamodule_cuts_long_sentences():
    corpus = Corpus("c", train=[["a"] * 10, ["b"]], val=[["a", "b"]])
    vocab = Vocabulary.build(corpus.train)
    dm = TextDataModule(corpus, vocab, batch_size=8, max_len=4)
    batch = next(iter(dm.val_dataloader()))
    assert batch["targets"].tolist() == [[vocab.stoi["a"], vocab.stoi["b"], EOS_ID]]
    lengths = sorted(
        (b != PAD_ID).sum().item() for b in next(iter(dm.train_dataloader()))["targets"]
    )
    assert lengths == [2, 5]  # 4 words + <eos>, 1 word + <eos>


def test_caption_batches_pair_each_caption_with_its_image():
    images = {
        s: [CaptionImage(f"{s}{i}", [["w", str(i)], ["v", str(i)]], ["", ""]) for i in range(3)]
        for s in ("train", "val", "test")
    }
    ds = CaptionDataset("toy", images, key="k")
    feats = {s: np.arange(3, dtype=np.float32)[:, None].repeat(2, 1) for s in images}
    vocab = Vocabulary.build(ds.sentences("train"))
    dm = CaptionDataModule(ds, feats, vocab, batch_size=6)
    batch = next(iter(dm.test_dataloader()))
    assert batch["features"].shape == (6, 2)
    # the second word of every caption is its image's index; the feature row says the same
    numbers = [int(vocab.itos[t]) for t in batch["targets"][:, 1].tolist()]
    assert numbers == batch["features"][:, 0].long().tolist()
    assert dm.feature_size == 2


def test_features_kept_on_the_device_give_every_batch_the_same_features():
    # as on a GPU (resident on an accelerator by default; forced here on the CPU): the batches
    # carry feature rows, and the features come from one copy of every split's features
    images = {
        s: [CaptionImage(f"{s}{i}", [["w", str(i)], ["v", str(i)]], ["", ""]) for i in range(n)]
        for s, n in (("train", 4), ("val", 3), ("test", 2))
    }
    ds = CaptionDataset("toy", images, key="k")
    feats = {
        s: np.arange(len(imgs) * 2, dtype=np.float32).reshape(-1, 2) + 100 * k
        for k, (s, imgs) in enumerate(images.items())
    }
    vocab = Vocabulary.build(ds.sentences("train"))
    plain = CaptionDataModule(ds, feats, vocab, batch_size=3)
    kept = CaptionDataModule(ds, feats, vocab, batch_size=3)
    kept.resident = True
    for split in ("train", "val", "test"):
        loaders = [getattr(dm, f"{split}_dataloader")() for dm in (plain, kept)]
        for a, b in zip(*loaders, strict=True):
            assert "features" not in b and b["feature_rows"].dtype == torch.long
            b = kept.on_after_batch_transfer(b, 0)
            assert "feature_rows" not in b
            assert torch.equal(a["features"], b["features"]) and torch.equal(
                a["inputs"], b["inputs"]
            )
    assert kept._on_device.shape == (9, 2)  # made once, every split in it
    assert plain.on_after_batch_transfer({"inputs": 1}, 0) == {"inputs": 1}


def test_a_fit_with_features_kept_on_the_device_trains_the_same_weights():
    import lightning as L

    from caplm.models.caption_generator import CaptionGenerator

    images = {
        s: [CaptionImage(f"{s}{i}", [["w", str(i)], ["v", str(i)]], ["", ""]) for i in range(4)]
        for s in ("train", "val", "test")
    }
    ds = CaptionDataset("toy", images, key="k")
    g = np.random.default_rng(0)
    feats = {s: g.standard_normal((4, 3)).astype(np.float32) for s in images}
    vocab = Vocabulary.build(ds.sentences("train"))
    weights = []
    for resident in (None, True):  # None: on the CPU, batches carry their features
        dm = CaptionDataModule(ds, feats, vocab, batch_size=3, seed=1)
        dm.resident = resident
        torch.manual_seed(0)
        model = CaptionGenerator(len(vocab), 3, embed_size=4, rnn_size=4, post_image_size=3)
        L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False).fit(model, dm)  # fmt: skip
        weights.append(model.state_dict())
        assert (dm._on_device is not None) == bool(resident)
    for name, w in weights[0].items():
        assert torch.equal(w, weights[1][name]), name
