"""merge_attention's pictures of where each word looked (#40.5)."""

import numpy as np
import torch
from PIL import Image

from caplm.data.text import Vocabulary
from caplm.evaluation.attention_pictures import TILE, attention_tiles, save_attention_pictures
from caplm.models.architectures import build_generator


def test_each_word_gets_a_tile_bright_where_it_attended():
    white = np.full((20, 20, 3), 255, dtype=np.uint8)
    weights = np.array([[0, 0, 0, 1.0], [0.5, 0.5, 0, 0]])  # 2 x 2 regions, row-major
    strip = np.asarray(attention_tiles(white, weights, ["red", "<eos>"]))
    assert strip.shape[1] == 2 * TILE
    q = TILE // 4
    assert strip[3 * q, 3 * q].tolist() == [255, 255, 255]  # word 1: bottom-right attended
    assert strip[q, q].tolist() == [51, 51, 51]  # the rest dark (0.2 of the picture)
    assert strip[q, TILE + q].tolist() == strip[q, TILE + 3 * q].tolist() == [255, 255, 255]
    assert strip[3 * q, TILE + q].tolist() == [51, 51, 51]


def test_a_job_saves_one_picture_per_caption(tmp_path):
    torch.manual_seed(0)
    vocab = Vocabulary.build([["a", "red", "circle"]])
    model = build_generator({"architecture": "merge_attention", "embed_size": 8, "rnn_size": 8,
                             "post_image_size": 8}, len(vocab), (4, 3), {}).eval()  # fmt: skip
    captions = [{"image_id": "b", "caption": "a red circle"}, {"image_id": "a", "caption": "a"}]
    images = {"a": np.zeros((8, 8, 3), np.uint8), "b": np.full((8, 8, 3), 200, np.uint8)}
    n = save_attention_pictures(model, torch.randn(2, 4, 3), ["a", "b"], captions, vocab,
                                images.__getitem__, tmp_path, count=1)  # fmt: skip
    assert n == 1 and captions[0]["attention_picture"] == "attention_pictures/b.png"
    assert "attention_picture" not in captions[1]
    picture = Image.open(tmp_path / captions[0]["attention_picture"])
    assert picture.size[0] == 4 * TILE  # a red circle <eos>
