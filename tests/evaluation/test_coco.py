import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from caplm.evaluation import coco
from caplm.evaluation.bleu import CorpusBLEU4, corpus_bleu4
from caplm.evaluation.coco import (
    caption_metrics,
    check_java,
    meteor_score,
    ngram_scores,
    ptb_tokenize,
    spice_score,
)
from caplm.results import CAPTION_METRICS

PKG = coco.SPICE_DIR.parent  # site-packages/pycocoevalcap


def child_pids() -> list[int]:
    """Processes whose parent is this one, zombies included (they are not yet reaped)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            pids.append(int(stat.parent.name))
    return pids


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


# --- A hand-checked fixture, scored by the pure-Python scorers (no Java) -------------------
# BLEU (corpus level, closest reference length): hypotheses have 5 + 4 words; the closest
# references have 5 and 4, so no brevity penalty. Clipped matches / hypothesis n-grams:
#   1-grams 9/9, 2-grams 7/7, 3-grams (2 + 2)/(3 + 2), 4-grams (0 + 1)/(2 + 1).
# ROUGE-L (beta 1.2, best precision and recall over refs): image 1 LCS 4 of 5 with both refs
#   -> 0.8; image 2 equals its first ref -> 1; mean 0.9.
# CIDEr: no n-gram occurs in both images' refs, so every IDF weight is log 2 and cancels in
#   the cosines; per image 10 x mean over n of (sum over refs of cosine x length penalty)
#   / number of refs. The penalty exp(-d^2 / 72) uses d = difference in *bigram* counts
#   (pycocoevalcap's quirk), which is 2 only for "two dogs run fast" vs "dogs run".
GTS = {"1": ["a cat on the mat", "a dog on a mat"], "2": ["two dogs run fast", "dogs run"]}
RES = {"1": ["a cat on a mat"], "2": ["two dogs run fast"]}


def test_ngram_scores_match_a_hand_computation():
    s = ngram_scores(GTS, RES)
    assert s["BLEU-1"] == pytest.approx(1.0, abs=1e-6)
    assert s["BLEU-2"] == pytest.approx(1.0, abs=1e-6)
    assert s["BLEU-3"] == pytest.approx((4 / 5) ** (1 / 3), abs=1e-6)
    assert s["BLEU-4"] == pytest.approx((4 / 5 * 1 / 3) ** (1 / 4), abs=1e-6)
    assert s["ROUGE_L"] == pytest.approx(0.9, abs=1e-12)
    # image 1, per n-gram order, cosine with ref 1 + cosine with ref 2 (no length penalty)
    img1 = [4 / math.sqrt(7 * 5) + 6 / 7, 2 / 4 + 2 / 4, 1 / 3 + 1 / 3, 0]
    # image 2: ref 1 is identical; ref 2 "dogs run" shares 2 unigrams and 1 bigram
    penalty = math.exp(-(2**2) / (2 * 6.0**2))
    img2 = [1 + penalty / math.sqrt(2), 1 + penalty / math.sqrt(3), 1, 1]
    cider = [10 * sum(v) / 4 / 2 for v in (img1, img2)]
    assert s["CIDEr"] == pytest.approx(sum(cider) / 2, rel=1e-12)


def test_any_perturbed_hypothesis_scores_lower_than_perfect_captions():
    caps = [
        "a red circle left of a blue square",
        "two green stars above a triangle",
        "a yellow star",
    ]
    gts = {str(i): [c] * 3 for i, c in enumerate(caps)}
    best = ngram_scores(gts, {i: [r[0]] for i, r in gts.items()})
    # "a" is in every image, so its IDF is 0, but each image has other weighted n-grams of
    # every order it has at all; "a yellow star" has no 4-gram: 10 x 3/4 for that image.
    assert best["CIDEr"] == pytest.approx((10 + 10 + 7.5) / 3, rel=1e-12)
    for i, cap in enumerate(caps):
        words = cap.split()
        for hyp in (words[1:], words[:-1], ["big", *words], words[:1] + ["purple"] + words[2:]):
            s = ngram_scores(gts, {**{k: [r[0]] for k, r in gts.items()}, str(i): [" ".join(hyp)]})
            assert s["CIDEr"] < best["CIDEr"] - 1e-6, hyp
            assert s["BLEU-4"] < best["BLEU-4"], hyp


# --- training-time BLEU (caplm.evaluation.bleu) ------------------------------------------------------------------


def test_corpus_bleu4_equals_pycocoevalcap_when_every_order_matches():
    refs = [[r.upper() for r in GTS[i]] for i in GTS]  # lower-cased inside
    hyps = [RES[i][0] for i in GTS]
    assert corpus_bleu4(refs, hyps) == pytest.approx(ngram_scores(GTS, RES)["BLEU-4"], abs=1e-6)
    assert corpus_bleu4(refs, hyps) == pytest.approx((4 / 15) ** (1 / 4), abs=1e-6)


def test_corpus_bleu4_is_zero_where_pycocoevalcap_keeps_an_epsilon():
    # No 4-gram of the hypothesis is in the reference (3-grams do match: "on the mat").
    gts, res = {"1": ["a cat sat on the mat"]}, {"1": ["a cat on the mat"]}
    assert corpus_bleu4([gts["1"]], res["1"]) == 0.0
    assert 0 < ngram_scores(gts, res)["BLEU-4"] < 1e-3


def test_corpus_bleu4_needs_one_reference_list_per_hypothesis():
    with pytest.raises(ValueError, match="one reference list per hypothesis"):
        corpus_bleu4([["a b"]], ["a b", "c d"])


def test_corpus_bleu4_is_torchmetrics_bleu_on_random_corpora():
    from torchmetrics.functional.text import bleu_score  # the oracle

    rng = random.Random(0)
    words = "a b c d e f g h".split()
    for trial in range(100):
        n = rng.randint(1, 20)
        refs = [[" ".join(rng.choices(words, k=rng.randint(trial % 5 == 0 and 0 or 1, 10)))
                 for _ in range(rng.randint(1, 5))] for _ in range(n)]  # fmt: skip
        hyps = [" ".join(rng.choices(words[: rng.randint(2, 8)], k=rng.randint(1, 10)))
                for _ in range(n)]  # fmt: skip
        expected = float(bleu_score(hyps, refs, n_gram=4))
        assert corpus_bleu4(refs, hyps) == pytest.approx(expected, abs=1e-6), (refs, hyps)
        bleu = CorpusBLEU4(refs)  # counted once, scored again and again
        assert bleu(hyps) == bleu(hyps) == corpus_bleu4(refs, hyps)


def test_corpus_bleu4_needs_a_reference_for_every_image():
    with pytest.raises(ValueError, match="at least one reference"):
        CorpusBLEU4([["a b"], []])


# --- input checks, Java check, METEOR failures (no Java needed) -------------------------


def test_mismatched_image_ids_are_a_clear_error():
    with pytest.raises(ValueError, match=r"1 hypotheses without references \(e.g. \['x'\]\)"):
        caption_metrics({"1": ["a b"]}, {"1": "a b", "x": "c"})
    with pytest.raises(ValueError, match="non-empty list of strings"):
        caption_metrics({"1": []}, {"1": "a b"})
    with pytest.raises(ValueError, match="spice must be one of"):
        caption_metrics({"1": ["a"]}, {"1": "a"}, spice="yes")


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"need a Java runtime \(17\) on PATH"):
        check_java()


FAKE_METEOR = {
    # answers every line with garbage, as in pycocoevalcap#15
    "garbage": "import sys\nfor line in sys.stdin: print('Error: specify Meteor stats', flush=True)",
    "dies": "import sys; sys.stderr.write('java.lang.OutOfMemoryError'); sys.exit(3)",
}


@pytest.mark.parametrize(
    "kind, match",
    [
        ("garbage", r"answered 'Error: specify Meteor stats' where a score was expected"),
        ("dies", r"exited with 3\..*pycocoevalcap#15.*java stderr: java.lang.OutOfMemoryError"),
    ],
)
def test_meteor_failure_is_a_clear_error_and_leaves_no_process(monkeypatch, kind, match):
    monkeypatch.setattr(coco, "METEOR_CMD", [sys.executable, "-c", FAKE_METEOR[kind]])
    before = child_pids()
    with pytest.raises(RuntimeError, match=match):
        meteor_score(GTS, RES)
    assert child_pids() == before


#: A stand-in METEOR that answers like the real one: a stats line per SCORE, then one number
#: per image and the corpus score per EVAL (the score: how many SCOREs this process has seen,
#: so a reused process is told apart from a fresh one).
FAKE_GOOD_METEOR = """import sys
seen = 0
for line in sys.stdin:
    if line.startswith("SCORE"):
        seen += 1
        print("1 2 3", flush=True)
    else:
        n = line.count("|||")
        print("\\n".join(["0.5"] * n + [str(seen)]), flush=True)
"""


def test_one_meteor_process_serves_every_call_and_a_dead_one_is_replaced(monkeypatch):
    monkeypatch.setattr(coco, "METEOR_CMD", [sys.executable, "-c", FAKE_GOOD_METEOR])
    before = set(child_pids())
    assert meteor_score(GTS, RES) == 2  # two images scored by a new process
    started = set(child_pids()) - before
    assert len(started) == 1
    assert meteor_score(GTS, RES) == 4  # the same process: it has now seen four
    assert set(child_pids()) - before == started
    (pid,) = started
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert meteor_score(GTS, RES) == 2  # a dead process is replaced by a fresh one
    coco._close_meteors()
    assert set(child_pids()) == before  # closed at exit: nothing left behind


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java 17")
def test_a_reused_meteor_jvm_scores_as_a_fresh_one():
    gts = {"1": ["a red circle on the left", "a small red circle"], "2": ["two blue squares"]}
    res = {"1": ["a red circle"], "2": ["a blue square"]}
    first = meteor_score(gts, res)
    other = meteor_score(GTS, {"1": ["a cat on a mat"], "2": ["dogs run fast"]})
    again = meteor_score(gts, res)  # after another set, in the same JVM
    coco._close_meteors()
    fresh = meteor_score(gts, res)  # a new JVM
    coco._close_meteors()
    assert first == again == fresh and 0 < first < 1 and other != first


# --- SPICE (no Java: the jar check and the java call are replaced) -----------------------


@pytest.fixture
def no_network_no_java(monkeypatch):
    """Fail loudly if SPICE tries a download or starts a process."""
    from pycocoevalcap.spice import get_stanford_models

    def forbidden(*args, **kwargs):
        raise AssertionError("SPICE must not download or run anything here")

    monkeypatch.setattr(get_stanford_models, "urlretrieve", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)


def test_spice_without_jars_is_skipped_at_once_with_the_reason(
    monkeypatch, tmp_path, no_network_no_java
):
    monkeypatch.setattr(coco, "SPICE_LIB", tmp_path)  # an empty lib folder, whatever is installed
    start = time.perf_counter()
    for mode in ("auto", "on"):
        score, status = spice_score(GTS, RES, mode)
        assert score is None
        assert status.startswith(f"skipped: Stanford CoreNLP 3.6.0 jars not found in {tmp_path}; ")
        assert "stanford-corenlp-3.6.0.jar and stanford-corenlp-3.6.0-models.jar" in status
        assert "get_stanford_models.py" in status
    assert time.perf_counter() - start < 0.1


def test_spice_on_warns_when_skipped_and_off_is_disabled(
    monkeypatch, tmp_path, caplog, no_network_no_java
):
    monkeypatch.setattr(coco, "SPICE_LIB", tmp_path)
    spice_score(GTS, RES, "auto")
    assert not caplog.records
    spice_score(GTS, RES, "on")
    assert "SPICE was asked for but is skipped" in caplog.text
    assert spice_score(GTS, RES, "off") == (None, "disabled")


class FakeSpiceJava:
    """Stands in for `java -jar spice-1.0.jar`: checks the call, writes SPICE's output format."""

    def __init__(self, f_scores, returncode=0, stderr=b"", write=True):
        self.f_scores, self.returncode, self.stderr, self.write = (
            f_scores,
            returncode,
            stderr,
            write,
        )
        self.calls = []

    def __call__(self, cmd, cwd, capture_output, timeout):
        in_file, out_file = Path(cmd[cmd.index("-jar") + 2]), Path(cmd[cmd.index("-out") + 1])
        self.calls.append({"cmd": cmd, "cwd": Path(cwd), "input": json.loads(in_file.read_text())})
        if self.write:
            out = [
                {"image_id": n, "scores": {"All": {"f": f, "pr": f, "re": f}}}
                for n, f in enumerate(self.f_scores)
            ]
            out_file.write_text(json.dumps(out))
        return subprocess.CompletedProcess(cmd, self.returncode, b"", self.stderr)


def test_spice_with_jars_runs_java_in_a_private_temp_dir(monkeypatch):
    fake = FakeSpiceJava([0.25, 0.5])
    monkeypatch.setattr(coco, "spice_jars_missing", lambda: [])
    monkeypatch.setattr(subprocess, "run", fake)
    assert spice_score(GTS, RES, "auto") == (pytest.approx(0.375), "ok")
    (call,) = fake.calls
    assert call["input"] == [
        {"image_id": 0, "test": "a cat on a mat", "refs": GTS["1"]},
        {"image_id": 1, "test": "two dogs run fast", "refs": GTS["2"]},
    ]
    assert "-cache" not in call["cmd"]  # broken on Java 17
    assert f"-Djava.io.tmpdir={call['cwd']}" in call["cmd"]
    assert call["cmd"][call["cmd"].index("-jar") + 1] == str(coco.SPICE_DIR / "spice-1.0.jar")
    assert PKG not in call["cwd"].parents
    assert not call["cwd"].exists()  # removed afterwards


@pytest.mark.parametrize(
    "fake, status",
    [
        (
            FakeSpiceJava([0.5, 0.5], 1, b"Exception: NoClassDefFoundError"),
            "failed: java exited with 1: Exception: NoClassDefFoundError",
        ),
        (FakeSpiceJava([0.5, 0.5], write=False), "failed: [Errno 2] No such file or directory"),
        (FakeSpiceJava([0.5]), "failed: SPICE returned scores for 1 of 2 images"),
        (FakeSpiceJava([0.5, None]), "failed: SPICE gave no score (NaN) for 1 images"),
    ],
)
def test_spice_failures_give_none_and_a_status(monkeypatch, fake, status):
    monkeypatch.setattr(coco, "spice_jars_missing", lambda: [])
    monkeypatch.setattr(subprocess, "run", fake)
    score, got = spice_score(GTS, RES, "on")
    assert score is None
    assert got.startswith(status)


def test_spice_timeout_gives_none_and_a_status(monkeypatch):
    def hang(cmd, cwd, capture_output, timeout):
        raise subprocess.TimeoutExpired(cmd, timeout)

    monkeypatch.setattr(coco, "spice_jars_missing", lambda: [])
    monkeypatch.setattr(subprocess, "run", hang)
    assert spice_score(GTS, RES, "auto", timeout_s=5) == (None, "failed: SPICE timed out after 5 s")


# --- With Java: the real tokenizer and METEOR --------------------------------------------


@pytest.mark.java
def test_ptb_tokenize_gives_the_stock_tokenizer_output():
    captions = [
        "A man, riding a horse.",
        "",
        'The "café" isn\'t open... (today)!',
        "two  dogs\nrun",
        "...",
        "a\rb",
    ]
    assert ptb_tokenize(captions) == [
        "a man riding a horse",
        "",
        "the café is n't open -lrb- today -rrb-",  # stock quirk: -LRB- is stripped, -lrb- not
        "two dogs run",
        "",
        "a b",  # the stock tokenizer breaks the line at \r and shifts every later caption
    ]


CAPS = {
    "1": "a red circle to the left of a blue square",
    "2": "two green stars above a triangle",
    "3": "a yellow star",
    "4": "a blue square below a red circle",
}
# Five references per image that differ only in case and punctuation: equal after PTB.
REFS = {i: [c, c.capitalize() + ".", c.upper(), c + " !", c] for i, c in CAPS.items()}
PERFECT = {i: c.capitalize() + "." for i, c in CAPS.items()}
PERTURBED = {**PERFECT, "1": "a red circle to the right of a blue square", "3": ""}  # "" must work


@pytest.fixture(scope="module")
def scored():
    """Two caption_metrics calls (one METEOR JVM each), with what they left behind."""
    children, files = child_pids(), tree(PKG)
    start = time.perf_counter()
    perfect = caption_metrics(REFS, PERFECT)
    perturbed = caption_metrics(REFS, PERTURBED, spice="auto")
    seconds = time.perf_counter() - start
    return {
        "perfect": perfect,
        "perturbed": perturbed,
        "seconds": seconds,
        "kept_children": sorted(set(child_pids()) - set(children)),  # the kept METEOR JVM
        "left_children": (coco._close_meteors(), sorted(set(child_pids()) - set(children)))[1],
        "files_before": files,
        "files_after": tree(PKG),
    }


@pytest.mark.java
def test_perfect_captions_get_the_maximum_scores(scored):
    s = scored["perfect"]
    assert list(s) == [*CAPTION_METRICS, "spice_status"]
    for n in range(1, 5):
        assert s[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert s["ROUGE_L"] == pytest.approx(1.0)
    assert s["METEOR"] == pytest.approx(1.0, abs=1e-6)
    # CIDEr maximum: 10 per image for each n-gram order the caption has with a non-zero
    # IDF weight; "a yellow star" has no 4-gram, so (10 + 10 + 7.5 + 10) / 4.
    assert s["CIDEr"] == pytest.approx(9.375, rel=1e-12)


@pytest.mark.java
def test_perturbed_captions_score_lower(scored):
    perfect, perturbed = scored["perfect"], scored["perturbed"]
    for metric in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE_L", "CIDEr"):
        assert 0 < perturbed[metric] < perfect[metric] - 1e-3, metric
    # ROUGE-L: image 3 (empty) scores 0, image 1 (one word of 10 swapped) LCS 9 of 10 -> 0.9
    assert perturbed["ROUGE_L"] == pytest.approx((1 + 0.9 + 0 + 1) / 4)


@pytest.mark.java
def test_spice_is_skipped_offline_without_crashing(scored):
    for s in (scored["perfect"], scored["perturbed"]):
        if coco.spice_jars_missing():
            assert s["SPICE"] is None
            assert s["spice_status"].startswith(
                "skipped: Stanford CoreNLP 3.6.0 jars not found in "
            )
        else:
            assert s["spice_status"] == "ok" or s["spice_status"].startswith("failed: ")


@pytest.mark.java
def test_nothing_is_written_into_pycocoevalcap_and_no_java_is_left(scored):
    assert scored["files_after"] == scored["files_before"]
    assert len(scored["kept_children"]) <= 1  # one METEOR JVM kept for the next call
    assert scored["left_children"] == []  # and none once it is closed (as at exit)
