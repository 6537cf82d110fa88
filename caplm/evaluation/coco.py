"""Caption metrics as coco-caption computes them: BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE.

We call pycocoevalcap's scorers one by one and never ``COCOEvalCap.evaluate()``: that builds
SPICE first, which downloads Stanford CoreNLP on first use, so offline the whole evaluation
fails. Three parts are our own small wrappers around the same Java programs, because the
stock Python code has side effects we cannot accept:

- PTB tokenizer: the stock one writes its temp file inside site-packages (fails on a
  read-only install, races between parallel jobs). Ours runs the same command on a file in
  a private temp folder and gives the same output.
- METEOR: one Java process (~7 s to start, up to a 2 GB heap) per Python process, kept for
  the next call (the jobs of a sweep share it), killed and reaped when a call fails and at
  exit, with a clear error instead of pycocoevalcap#15's "could not convert string to
  float" when the process dies.
- SPICE: needs the Stanford CoreNLP 3.6.0 jars, which pycocoevalcap downloads on first use.
  We never download: without the jars SPICE is skipped at once and ``spice_status`` says
  why. With them, it runs in a private temp folder, without ``-cache`` (reported broken on
  Java 17) and with a timeout; any failure gives ``SPICE: None`` and never a crash.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor import meteor as _meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.spice import spice as _spice
from pycocoevalcap.tokenizer import ptbtokenizer as _ptb

from caplm.results import CAPTION_METRICS

log = logging.getLogger(__name__)

PTB_JAR = Path(_ptb.__file__).parent / _ptb.STANFORD_CORENLP_3_4_1_JAR
METEOR_DIR = Path(_meteor.__file__).parent
METEOR_CMD = ["java", "-Xmx2G", "-jar", _meteor.METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
SPICE_DIR = Path(_spice.__file__).parent
SPICE_LIB = SPICE_DIR / "lib"
SPICE_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
SPICE_MODES = ("auto", "on", "off")

JAVA_TIMEOUT_S = 1800  # PTB tokenizer and METEOR; a hung JVM must not hang a sweep
SPICE_TIMEOUT_S = 3600  # SPICE parses every caption with CoreNLP: slow on large test sets


def caption_metrics(
    references: dict[str, list[str]],
    hypotheses: dict[str, str],
    spice: str = "auto",
    *,
    meteor: bool = True,
    spice_timeout_s: float = SPICE_TIMEOUT_S,
) -> dict:
    """BLEU-1..4, METEOR, ROUGE_L, CIDEr and SPICE of one caption per image against its refs.

    ``references`` and ``hypotheses`` are raw text keyed by image id (the same ids in both);
    both are PTB-tokenised, lower-cased and stripped of punctuation, as coco-caption does.
    ``spice``: ``"auto"`` runs SPICE when its jars are present and skips it otherwise,
    ``"on"`` does the same but logs a warning when it skips, ``"off"`` never runs it.
    ``meteor=False`` skips METEOR (None), saving its JVM start (~7 s, once per process) in quick runs.
    Returns the metrics (``"SPICE"`` is None unless it ran) and ``"spice_status"``: ``"ok"``,
    ``"disabled"``, ``"skipped: <why>"`` or ``"failed: <why>"``.

    CIDEr's IDF comes from the references of the images scored together, so it is only
    meaningful on a whole test set (one image alone scores 0).
    """
    if spice not in SPICE_MODES:
        raise ValueError(f"spice must be one of {SPICE_MODES}, got {spice!r}")
    ids = _check_captions(references, hypotheses)
    check_java()

    # One java call for all captions: refs first, then hypotheses, in image order.
    flat = [c for i in ids for c in references[i]] + [hypotheses[i] for i in ids]
    tokens = iter(ptb_tokenize(flat))
    gts = {i: [next(tokens) for _ in references[i]] for i in ids}
    res = {i: [next(tokens)] for i in ids}

    scores = ngram_scores(gts, res)
    scores["METEOR"] = meteor_score(gts, res) if meteor else None
    scores["SPICE"], scores["spice_status"] = spice_score(gts, res, spice, spice_timeout_s)
    return {name: scores[name] for name in (*CAPTION_METRICS, "spice_status")}


def check_java() -> None:
    if shutil.which("java") is None:
        raise RuntimeError(
            "METEOR and the PTB tokenizer need a Java runtime (17) on PATH, and `java` was not "
            "found; install one (e.g. `apt-get install openjdk-17-jre-headless`) or put its "
            "bin/ folder on PATH"
        )


def _check_captions(references: dict, hypotheses: dict) -> list:
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    missing = [i for i in hypotheses if i not in references]
    extra = [i for i in references if i not in hypotheses]
    if missing or extra:
        raise ValueError(
            "references and hypotheses must have the same image ids: "
            f"{len(missing)} hypotheses without references (e.g. {missing[:3]}), "
            f"{len(extra)} references without a hypothesis (e.g. {extra[:3]})"
        )
    for i, h in hypotheses.items():
        refs = references[i]
        if not isinstance(h, str):
            raise TypeError(f"image {i!r}: a hypothesis must be one string, got {type(h).__name__}")
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"image {i!r}: references must be a non-empty list of strings")
    return list(hypotheses)


def ptb_tokenize(captions: Sequence[str]) -> list[str]:
    """Tokenise like pycocoevalcap's PTBTokenizer: same java command, same punctuation removed.

    Each caption is one line of the input file, so any whitespace inside a caption (the
    tokenizer also breaks lines at \\r and \\f) is turned into one space first.
    """
    if not captions:
        return []
    lines = [" ".join(c.split()) for c in captions]
    with tempfile.TemporaryDirectory(prefix="caplm-ptb-") as tmp:
        path = Path(tmp) / "captions.txt"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        cmd = ["java", "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer"]
        cmd += ["-preserveLines", "-lowerCase", str(path)]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=JAVA_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed (exit {proc.returncode}): {_tail(proc.stderr)}")
    out = proc.stdout.decode("utf-8").split("\n")
    if len(out) != len(lines) + 1 or out[-1] != "":  # one line per caption, each ending in \n
        raise RuntimeError(f"PTB tokenizer gave {len(out) - 1} lines for {len(lines)} captions")
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in _ptb.PUNCTUATIONS)
        for line in out[:-1]
    ]


def ngram_scores(gts: dict[str, list[str]], res: dict[str, list[str]]) -> dict[str, float]:
    """BLEU-1..4, ROUGE_L and CIDEr (pycocoevalcap's pure-Python scorers) on tokenised text."""
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f"BLEU-{n}": float(b) for n, b in enumerate(bleu, start=1)}
    return {**scores, "ROUGE_L": float(rouge), "CIDEr": float(cider)}


def meteor_score(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    """METEOR 1.5 of tokenised captions, as pycocoevalcap's Meteor computes it.

    The METEOR JVM (about 7 s to start: it loads its paraphrase table) is started once per
    process and kept for the next call, so the jobs of a sweep run in one process (Hydra's
    basic launcher, a parallel launcher's workers) pay for it once. Each call is a stateless
    SCORE ... EVAL exchange, so a reused JVM gives the same score as a fresh one. A failed
    call kills its JVM (the next call starts a new one); the last one is killed at exit.
    """
    with _METEOR_LOCK:
        meteor = _shared_meteor()
        meteor.arm()
        try:
            stats = []
            for i in res:
                # ' ||| ' separates the fields, so it must not occur inside a caption.
                fields = [c.replace("|||", "").replace("  ", " ") for c in [*gts[i], res[i][0]]]
                meteor.send(" ||| ".join(["SCORE", *fields]))
                stats.append(meteor.read_line())
            meteor.send(" ||| ".join(["EVAL", *stats]))
            for _ in res:  # per-image scores come first, then the corpus score
                meteor.read_number()
            score = meteor.read_number()
        except BaseException:
            _METEORS.pop(meteor.key, None)
            meteor.close()
            raise
        meteor.disarm()
        return score


#: The live METEOR JVM of this process per command line (a test may swap the command).
_METEORS: dict[tuple, _Meteor] = {}
_METEOR_LOCK = threading.Lock()


def _shared_meteor() -> _Meteor:
    """This process's METEOR JVM for METEOR_CMD: the kept one while it lives, else a new one."""
    key = (os.getpid(), *METEOR_CMD)  # a forked child never talks to its parent's JVM
    meteor = _METEORS.get(key)
    if meteor is None or meteor.proc.poll() is not None:
        if meteor is not None:
            meteor.close()
        meteor = _METEORS[key] = _Meteor(key)
    return meteor


@atexit.register
def _close_meteors() -> None:
    for key, meteor in list(_METEORS.items()):
        if key[0] == os.getpid():
            meteor.close()
    _METEORS.clear()


class _Meteor:
    """The METEOR java process, spoken to over stdin/stdout, one line per request. A call
    arms its watchdog (:meth:`arm`): a JVM that hangs longer than JAVA_TIMEOUT_S is killed."""

    def __init__(self, key: tuple = ()) -> None:
        self.key = key
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            METEOR_CMD,
            cwd=METEOR_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,  # a file, not a pipe: an unread pipe can fill and block java
        )
        self.timed_out = False
        self.timer = None

    def arm(self) -> None:
        self.disarm()
        self.timer = threading.Timer(JAVA_TIMEOUT_S, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _expire(self) -> None:
        self.timed_out = True
        self.proc.kill()

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # java is gone; the next read_line reports it with its stderr

    def read_line(self) -> str:
        return self.proc.stdout.readline().decode("utf-8").strip()

    def read_number(self) -> float:
        line = self.read_line()
        try:
            return float(line)
        except ValueError:
            raise RuntimeError(self._failure(line)) from None

    def _failure(self, line: str) -> str:
        if not line:  # end of output: java is exiting; let it finish to read its exit code
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self.timed_out:
            why = f"it was killed after {JAVA_TIMEOUT_S} s"
        elif self.proc.poll() is not None:
            why = f"the java process exited with {self.proc.returncode}"
        else:
            why = "its answers were out of step with the requests"
        self.stderr.seek(0)
        return (
            f"METEOR failed: it answered {line!r} where a score was expected; {why}. "
            "(This is pycocoevalcap#15's 'could not convert string to float'; usual causes: "
            "too little memory for its 2 GB heap, no working Java 17, or a damaged "
            f"meteor-1.5.jar / paraphrase-en.gz in {METEOR_DIR}.) "
            f"java stderr: {_tail(self.stderr.read())}"
        )

    def close(self) -> None:
        self.disarm()
        self.proc.kill()
        self.proc.wait()  # reap it: no zombie java left behind
        with contextlib.suppress(BrokenPipeError):  # unsent bytes to a dead java don't matter
            self.proc.stdin.close()
        self.proc.stdout.close()
        self.stderr.close()


def spice_score(
    gts: dict[str, list[str]],
    res: dict[str, list[str]],
    mode: str = "auto",
    timeout_s: float = SPICE_TIMEOUT_S,
) -> tuple[float | None, str]:
    """(SPICE, status). Never downloads anything, never raises: SPICE is optional."""
    if mode == "off":
        return None, "disabled"
    missing = spice_jars_missing()
    if missing:
        status = (
            f"skipped: Stanford CoreNLP 3.6.0 jars not found in {SPICE_LIB}; to enable SPICE "
            f"put {' and '.join(SPICE_CORENLP_JARS)} there (pycocoevalcap/spice/"
            "get_stanford_models.py fetches them on a machine with internet)"
        )
        if mode == "on":
            log.warning("SPICE was asked for but is %s", status)
        return None, status
    try:
        return _run_spice(gts, res, timeout_s), "ok"
    except subprocess.TimeoutExpired:
        return None, f"failed: SPICE timed out after {timeout_s} s"
    except Exception as err:  # any failure of an optional metric is reported, not raised
        return None, f"failed: {err}"


def spice_jars_missing() -> list[str]:
    return [name for name in SPICE_CORENLP_JARS if not (SPICE_LIB / name).is_file()]


def _run_spice(gts: dict[str, list[str]], res: dict[str, list[str]], timeout_s: float) -> float:
    ids = list(res)
    with tempfile.TemporaryDirectory(prefix="caplm-spice-") as tmp:
        in_file, out_file = Path(tmp) / "input.json", Path(tmp) / "output.json"
        data = [{"image_id": n, "test": res[i][0], "refs": gts[i]} for n, i in enumerate(ids)]
        in_file.write_text(json.dumps(data))
        cmd = [
            "java",
            "-Xmx8G",
            f"-Djava.io.tmpdir={tmp}",
            "-jar",
            str(SPICE_DIR / _spice.SPICE_JAR),
        ]
        cmd += [str(in_file), "-out", str(out_file), "-subset", "-silent"]  # no -cache: see top
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"java exited with {proc.returncode}: {_tail(proc.stderr)}")
        results = json.loads(out_file.read_text())
    if sorted(r["image_id"] for r in results) != list(range(len(ids))):
        raise RuntimeError(f"SPICE returned scores for {len(results)} of {len(ids)} images")
    f = np.array([_float_or_nan(r["scores"]["All"]["f"]) for r in results])
    if not np.isfinite(f).all():
        raise RuntimeError(f"SPICE gave no score (NaN) for {int((~np.isfinite(f)).sum())} images")
    return float(f.mean())


def _float_or_nan(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # as pycocoevalcap's Spice.float_convert: null etc. -> NaN
        return float("nan")


def _tail(stderr: bytes, chars: int = 500) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    return text[-chars:] if text else "(nothing)"
