"""The report's gallery: a few test images with each transfer mode's caption side by side.

Per dataset (and data config) of a sweep, one seed (the smallest) and one job per transfer
mode: the jobs that use no LM (``none``, ``random_frozen``) and, for the modes that transfer
one, the jobs of one LM (the LM shared by most modes), then other LMs' jobs while there are
fewer than MAX_COLUMNS columns. Their ``test_captions.json`` give the
captions of the first test images they all captioned; the pictures are the ones the jobs
saved (``eval.pictures``, ``caplm.evaluation.pictures``), copied under ``report/gallery/``.
The report reads only the jobs' files, never a dataset. On a generated dataset each caption
is marked all true or not, as the job's grounding checker judged it (``all_true``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from caplm.io import UNREADABLE, safe_name, stable_hash
from caplm.models.transfer.modes import STUDY_MODES
from caplm.report.columns import FAMILY, LM_PPLX
from caplm.results import ALL_TRUE_MEANS, CAPTIONS_FILE, CONFIG_FILE, grounding_key, metric_key

GALLERY_DIR = "gallery"
IMAGES = 4  # test images per dataset (python -m caplm.report --gallery N)
MAX_COLUMNS = 6  # jobs side by side
LM_CELL = ("corpus", "size_exponent", "lm_max_epochs", FAMILY)  # what tells two LMs apart
TRUE, NOT_TRUE = "✓", "✗"


@dataclass
class Gallery:
    """One dataset's gallery: the jobs shown and their captions of the chosen images."""

    dataset: str
    seed: object
    jobs: list[pd.Series]  # one per column (see _columns)
    labels: list[str]
    image_ids: list[str] = field(default_factory=list)
    captions: list[dict[str, dict]] = field(default_factory=list)  # per job: image id -> entry
    pictures: dict[str, str] = field(default_factory=dict)  # image id -> file, relative to out
    checker: str = ""  # the grounding checker of the all_true marks (a generated dataset's)
    #: (job label, image id, file relative to out): merge_attention's attention per word
    attention: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_galleries(complete: pd.DataFrame, root: Path, out: Path, images: int = IMAGES):
    """The gallery section's Markdown lines; pictures are written under ``out/gallery/``."""
    if images <= 0:
        return ["- not made (`--gallery 0`)", ""]
    if not len(complete) or "job_dir" not in complete:
        return ["- none: no complete job", ""]
    lines = []
    for (dataset, digest), jobs in _by_data(complete, root):
        gallery = _gallery(dataset, digest, jobs, root, out, images)
        lines += _markdown(gallery)
    return lines


def _by_data(complete: pd.DataFrame, root: Path):
    """(dataset, data config digest) -> its jobs: jobs with another data config (another
    seed of the generated images, another split file) have other test images."""
    digests = [_data_digest(root / d) for d in complete["job_dir"]]
    names = complete["data"] if "data" in complete else pd.Series("?", index=complete.index)
    keyed = complete.assign(_dataset=names.fillna("?").astype(str), _digest=digests)
    for key, jobs in keyed.groupby(["_dataset", "_digest"], sort=True, dropna=False):
        yield key, jobs.drop(columns=["_dataset", "_digest"])


def _data_digest(job_dir: Path) -> str:
    try:
        data = OmegaConf.load(job_dir / CONFIG_FILE).get("data")
        return stable_hash(OmegaConf.to_container(data, resolve=False))
    except Exception:  # no or unreadable config: such jobs are a group of their own
        return ""


def _gallery(
    dataset: str, digest: str, jobs: pd.DataFrame, root: Path, out: Path, images: int
) -> Gallery:
    seed = jobs["seed"].min() if "seed" in jobs and jobs["seed"].notna().any() else None
    at_seed = jobs if seed is None else jobs[jobs["seed"] == seed]
    chosen, notes = _columns(at_seed)
    kept, captions = [], []
    for job in chosen:
        found = _read_captions(root / job["job_dir"])
        if isinstance(found, str):
            notes.append(f"`{job['job_dir']}` left out: {found}")
            continue
        kept.append(job)
        captions.append(found)
    labels = [_label(j, kept) for j in kept]
    gallery = Gallery(dataset, seed, kept, labels, captions=captions, notes=notes)
    if not captions:
        return gallery
    common = set.intersection(*(set(c) for c in captions))
    gallery.image_ids = [i for i in captions[0] if i in common][:images]
    _add_pictures(gallery, Path(GALLERY_DIR) / safe_name(f"{dataset}-{digest[:8]}"), root, out)
    gallery.checker = _checker(kept[0])
    return gallery


def _columns(jobs: pd.DataFrame) -> tuple[list[pd.Series], list[str]]:
    """One job per transfer mode: every mode without an LM and one LM's transferring modes
    (the LM that ran most of them), then other LMs' jobs up to MAX_COLUMNS."""
    order = {m: i for i, m in enumerate(STUDY_MODES)}  # the study's, then the others by name
    rows = [row for _, row in jobs.iterrows()]
    rows.sort(
        key=lambda r: (order.get(r.get("transfer"), len(order)), str(r.get("transfer")), _lm(r))
    )
    lms = sorted({_lm(r) for r in rows if _has_lm(r)})
    notes = []
    modes_of = {lm: {r["transfer"] for r in rows if _has_lm(r) and _lm(r) == lm} for lm in lms}
    # the LM that ran most modes; max keeps the first of a tie
    shown_lm = max(lms, key=lambda lm: len(modes_of[lm]), default=None)
    chosen, others, seen = [], [], set()
    for r in rows:
        key = (r.get("transfer"), _lm(r))
        if key in seen:
            continue
        seen.add(key)
        (others if _has_lm(r) and _lm(r) != shown_lm else chosen).append(r)
    if len(chosen) > MAX_COLUMNS:
        notes.append(f"{len(chosen) - MAX_COLUMNS} more job(s) not shown")
        chosen = chosen[:MAX_COLUMNS]
    room = others[: MAX_COLUMNS - len(chosen)]  # other LMs' jobs, while there is room
    if lms:
        also = ", and other LMs' jobs while there is room (named in their columns)" if room else ""
        of = f" (the sweep has {len(lms)} LMs; every job's captions are in its {CAPTIONS_FILE})"
        notes.append(f"transferred LM: {_lm_label(shown_lm)}{also}{of if len(lms) > 1 else ''}")
    return [*chosen, *room], notes


def _has_lm(row: pd.Series) -> bool:
    return LM_PPLX in row and pd.notna(row[LM_PPLX])


def _lm(row: pd.Series) -> tuple[str, ...]:
    return tuple(_text(row.get(k)) for k in LM_CELL)


def _text(value) -> str:
    """A cell value as the user wrote it: 0 not 0.0, nothing for a missing value."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _lm_label(lm: tuple[str, ...]) -> str:
    corpus, size, epochs, family = lm
    parts = [f"corpus {corpus}" if corpus else "", f"size exponent {size}" if size else ""]
    parts += [f"LM epochs {epochs}" if epochs else "", family]
    return ", ".join(p for p in parts if p)


def _label(job: pd.Series, shown: list[pd.Series]) -> str:
    label = str(job.get("transfer", "?"))
    if _has_lm(job) and len({_lm(j) for j in shown if _has_lm(j)}) > 1:
        label += f" ({_text(job.get('corpus'))}, e={_text(job.get('size_exponent'))})"
    cider = job.get(metric_key("CIDEr"))
    return label + (f" · CIDEr {cider:.3f}" if pd.notna(cider) else "")


def _read_captions(job_dir: Path) -> dict[str, dict] | str:
    path = job_dir / CAPTIONS_FILE
    try:
        entries = json.loads(path.read_text())
        return {e["image_id"]: e for e in entries}
    except FileNotFoundError:
        return f"no {CAPTIONS_FILE}"
    except (*UNREADABLE, KeyError, TypeError) as err:
        return f"{path} is unreadable ({err})"


def _add_pictures(gallery: Gallery, folder: Path, root: Path, out: Path) -> None:
    """Copy the pictures the jobs saved of the chosen images to ``out/folder`` (the first
    job's that has one: jobs with one data config have the same test images)."""
    for image_id in gallery.image_ids:
        for job, captions in zip(gallery.jobs, gallery.captions, strict=True):
            saved = captions[image_id].get("picture")
            if saved and (root / job["job_dir"] / saved).is_file():
                name = folder / f"{safe_name(image_id)}{Path(saved).suffix}"
                (out / folder).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / job["job_dir"] / saved, out / name)
                gallery.pictures[image_id] = name.as_posix()
                break
    for job, captions, label in zip(gallery.jobs, gallery.captions, gallery.labels, strict=True):
        for image_id in gallery.image_ids:  # model=merge_attention: where each word looked
            saved = captions[image_id].get("attention_picture")
            if saved and (root / job["job_dir"] / saved).is_file():
                name = folder / f"attention-{safe_name(label)}-{safe_name(image_id)}.png"
                (out / folder).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / job["job_dir"] / saved, out / name)
                gallery.attention.append((label, image_id, name.as_posix()))
    if not gallery.pictures:
        gallery.notes.append(
            "no pictures: the jobs saved none (`eval.pictures` is 0, the dataset has no images "
            "folder (`data.images_dir`), the jobs read a features file (`data.features_file`) "
            "and no images, or they ran before caplm saved pictures)"
        )


def _checker(job: pd.Series) -> str:
    """The grounding checker whose ``all_true_frac`` the job reports ('' for real data)."""
    found = [n for n in ALL_TRUE_MEANS if pd.notna(job.get(grounding_key(n, "all_true_frac")))]
    return found[0] if found else ""


def _markdown(g: Gallery) -> list[str]:
    seed = "" if g.seed is None else f", seed {g.seed}"
    lines = [f"### {g.dataset}{seed}", ""]
    if not g.image_ids:
        notes = g.notes or ["no test captions shared by the jobs"]
        return [*lines, *(f"- {n}" for n in notes), ""]
    header = ["image", "references", *(_cell(label) for label in g.labels)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for image_id in g.image_ids:
        picture = g.pictures.get(image_id)
        cells = [f"![{image_id}]({picture})<br>{image_id}" if picture else image_id]
        refs = g.captions[0][image_id]["references"]
        cells.append("<br>".join(_cell(r) for r in refs))
        for captions in g.captions:
            true = captions[image_id].get("all_true")
            mark = "" if true is None else f"{TRUE if true else NOT_TRUE} "
            cells.append(mark + _cell(captions[image_id]["caption"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if g.checker:
        lines.append(f"{TRUE}: the caption {ALL_TRUE_MEANS[g.checker]}; {NOT_TRUE}: not so.")
    for label, image_id, picture in g.attention:
        lines += ["", f"Where {_cell(label)} looked for each word of its caption of {image_id} "
                  "(bright: attended):", "", f"![attention {image_id}]({picture})"]  # fmt: skip
    return [*lines, *(f"- {n}" for n in g.notes), ""]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
