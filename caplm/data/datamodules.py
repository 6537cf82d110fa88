"""LightningDataModules: token ids (and image features) in the batches the models expect.

Every batch is a dict: ``inputs`` (B, T) = ``<bos>`` + words, ``targets`` (B, T) = words +
``<eos>``, padded with ``<pad>`` (id 0); caption batches add ``features`` (B, F) (or (B, R, D): region vectors). Sentences
longer than ``max_len`` words are cut to ``max_len`` (their ``<eos>`` kept).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerStatus
from torch.utils.data import DataLoader, Dataset

from caplm.data.batching import encode_sentences, pad_batch
from caplm.data.features import DiskRows
from caplm.data.text import Vocabulary
from caplm.data.types import CaptionDataset, Corpus


class _Sentences(Dataset):
    """Sentences, each optionally paired with the index of its image's feature row."""

    def __init__(self, ids: list[torch.Tensor], image_index: Sequence[int] | None = None):
        self.ids = ids
        self.image_index = image_index

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        if self.image_index is None:
            return self.ids[i]
        return self.ids[i], self.image_index[i]


class _Collate:
    """Pads a batch; for caption batches also gathers the image features (from memory, or
    read from their file for features kept on disk), or, with ``offset``, gives their rows in
    the data module's copy of every split's features on the device (``feature_rows``:
    ``offset`` + each caption's image index)."""

    def __init__(self, features: torch.Tensor | DiskRows | None = None, offset: int | None = None):
        self.features, self.offset = features, offset

    def __call__(self, items):
        if self.features is None:
            return pad_batch(items)
        ids, image_index = zip(*items, strict=True)
        batch = pad_batch(ids)
        if self.offset is not None:
            batch["feature_rows"] = torch.as_tensor(image_index) + self.offset
        else:
            batch["features"] = torch.as_tensor(self.features[list(image_index)])
        return batch


def _loader(dataset, collate, batch_size: int, num_workers: int, generator=None):
    """A loader; shuffled by ``generator`` when one is given."""
    # fork: DataLoader workers under the joblib launcher fail to start with spawn/forkserver
    # (measured, see shared/notes/ecosystem.md); in-memory tensors make fork cheap.
    context = (
        "fork" if num_workers > 0 and "fork" in multiprocessing.get_all_start_methods() else None
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=generator is not None,
        collate_fn=collate,
        num_workers=num_workers,
        multiprocessing_context=context,
        persistent_workers=num_workers > 0,
        generator=generator,
        pin_memory=torch.cuda.is_available(),  # page-locked batches: non-blocking GPU copies
    )


class _ShuffledDataModule(L.LightningDataModule):
    """Shuffles its training data with its own generator, seeded by the run's seed, whose
    state checkpoints carry (``state_dict``): a resumed fit sees the same order of batches,
    epoch after epoch, as a fit that was never interrupted."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed
        self.shuffle_generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"shuffle_generator": self.shuffle_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.shuffle_generator.set_state(state["shuffle_generator"])


class TextDataModule(_ShuffledDataModule):
    """A language-model corpus: ``train`` and ``val`` sentences, no images."""

    def __init__(
        self,
        corpus: Corpus,
        vocab: Vocabulary,
        batch_size: int = 64,
        max_len: int = 50,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(seed)
        self.corpus, self.vocab = corpus, vocab
        self.batch_size, self.max_len = batch_size, max_len
        self.num_workers = num_workers
        self.train_ids = encode_sentences(corpus.train, vocab, max_len)
        self.val_ids = encode_sentences(corpus.val, vocab, max_len)

    def train_dataloader(self):
        return _loader(
            _Sentences(self.train_ids),
            _Collate(),
            self.batch_size,
            self.num_workers,
            self.shuffle_generator,
        )

    def val_dataloader(self):
        return _loader(
            _Sentences(self.val_ids),
            _Collate(),
            self.batch_size,
            self.num_workers,
        )


class CaptionDataModule(_ShuffledDataModule):
    """Image features with their captions: one example per (image, reference caption)."""

    def __init__(
        self,
        dataset: CaptionDataset,
        features: dict[str, np.ndarray | DiskRows],
        vocab: Vocabulary,
        batch_size: int = 64,
        max_len: int = 20,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(seed)
        self.dataset, self.vocab = dataset, vocab
        self.batch_size, self.max_len = batch_size, max_len
        self.num_workers = num_workers
        self.features = {
            s: f if isinstance(f, DiskRows) else torch.as_tensor(np.asarray(f), dtype=torch.float32)
            for s, f in features.items()
        }
        for split, images in dataset.splits.items():
            if len(self.features[split]) != len(images):
                raise ValueError(
                    f"{split}: {len(self.features[split])} feature rows for {len(images)} images"
                )
        #: One image's features: (F,), or (R, D) region vectors.
        self.feature_shape = tuple(next(iter(self.features.values())).shape[1:])
        self.feature_size = self.feature_shape[-1]
        #: Whether batches take their features from a copy of every split's features kept on
        #: the device (each batch then moves only its token ids): None, for the loaders of a
        #: running fit/validate/test on an accelerator (not for loaders used outside the
        #: Trainer) when the features are in memory (Flickr8k's 6,000 x 4,096: 98 MB).
        self.resident: bool | None = None
        self._on_device: torch.Tensor | None = None

    def _is_resident(self) -> bool:
        if any(isinstance(f, DiskRows) for f in self.features.values()):
            return False
        if self.resident is not None:
            return self.resident
        trainer = getattr(self, "trainer", None)
        return (
            trainer is not None
            and trainer.state.status == TrainerStatus.RUNNING
            and trainer.strategy.root_device.type != "cpu"
        )

    def _offset(self, split: str) -> int:
        """Where ``split``'s rows start in the features kept on the device."""
        splits = list(self.features)
        return sum(len(self.features[s]) for s in splits[: splits.index(split)])

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """A batch with ``feature_rows`` gets its features from the copy on its device (made
        at the first such batch, kept for the fit)."""
        rows = batch.pop("feature_rows", None) if isinstance(batch, dict) else None
        if rows is None:
            return batch
        if self._on_device is None or self._on_device.device != rows.device:
            self._on_device = torch.cat(list(self.features.values())).to(rows.device)
        batch["features"] = self._on_device.index_select(0, rows)
        return batch

    def caption_images(self, split: str) -> list[int]:
        """For each caption of ``dataset.sentences(split)``, the index of its image."""
        return [i for i, img in enumerate(self.dataset.splits[split]) for _ in img.captions]

    def pairs(self, split: str) -> tuple[list[torch.Tensor], list[int]]:
        """Encoded captions of a split and the image index of each."""
        ids = encode_sentences(self.dataset.sentences(split), self.vocab, self.max_len)
        return ids, self.caption_images(split)

    def _dataloader(self, split: str, shuffle: bool) -> DataLoader:
        ids, image_index = self.pairs(split)
        return _loader(
            _Sentences(ids, image_index),
            _Collate(self.features[split], self._offset(split) if self._is_resident() else None),
            self.batch_size,
            self.num_workers,
            self.shuffle_generator if shuffle else None,
        )

    def train_dataloader(self):
        return self._dataloader("train", shuffle=True)

    def val_dataloader(self):
        return self._dataloader("val", shuffle=False)

    def test_dataloader(self):
        return self._dataloader("test", shuffle=False)

    def references(self, split: str) -> list[list[list[str]]]:
        """Tokenised reference captions per image of a split."""
        return [img.captions for img in self.dataset.splits[split]]
