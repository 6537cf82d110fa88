"""Every experiment, every job of its sweep, and every launcher/trainer/logger compose."""

import importlib.util
import itertools
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from caplm import CONF_DIR
from caplm.data.encoders import build_encoder
from caplm.models.transfer.modes import mode_names
from caplm.runtime.config import ConfigError, check_config

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _compose(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def _sweep_jobs(cfg, command_line=()):
    """The override lists of the jobs a multirun of ``cfg`` would launch (basic sweeper), with
    the sweep overrides of the ``command_line`` (``key=a,b``) replacing or adding axes."""
    parser = OverridesParser.create()
    params = dict(cfg.hydra.sweeper.params or {})
    for o in parser.parse_overrides(list(command_line)):
        if o.is_sweep_override():
            params[o.get_key_element()] = ",".join(o.sweep_string_iterator())
    axes = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [f"{o.get_key_element()}={o.get_value_element_as_str()}"]
        for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
    ]
    return [list(job) for job in itertools.product(*axes)]


def _resolved(cfg):
    return {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in cfg.items()
        if k not in ("hydra", "paths", "logger")
    }


def test_the_required_experiments_exist():
    assert {
        "transfer_frozen",
        "transfer_init",
        "no_transfer",
        "random_rnn",
        "partial_training",
        "paper_grid",
    } <= set(EXPERIMENTS)


#: Experiments that sweep models the user names (the setting they need from the user): their
#: jobs compose, and the check asks for that setting by name (tests/hf runs them on tiny models).
NEEDS_USER_SETTING = {"hf_transfer": "lm.path is not set"}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_job_of_every_experiment_composes(name):
    cfg = _compose([f"+experiment={name}"])
    assert cfg.task_name == name  # the sweep's folder is multirun/<name>
    jobs = _sweep_jobs(cfg)
    assert jobs, "an experiment is a sweep"
    if name in NEEDS_USER_SETTING:
        for job in jobs:
            with pytest.raises(ConfigError, match=NEEDS_USER_SETTING[name]):
                check_config(_compose([f"+experiment={name}", *job]))
        return
    step = max(1, len(jobs) // 40)  # the big study grids: every step-th job (and the last)
    for job in [*jobs[::step], jobs[-1]]:
        composed = _compose([f"+experiment={name}", *job])
        check_config(composed)  # every setting known and valid
        job_cfg = _resolved(composed)
        assert job_cfg["transfer"]["mode"] in mode_names()
        model, lm = job_cfg["model"], job_cfg["lm"]
        assert (model["embed_size"], model["rnn_size"]) == (lm["embed_size"], lm["rnn_size"])


def _make_sweep_overrides() -> list[str]:
    """The overrides ``make sweep`` gives ``python -m caplm.train ... -m`` (its SWEEP_ARGS too)."""
    makefile = (CONF_DIR.parent / "Makefile").read_text()
    args = re.search(r"^SWEEP_ARGS \?= (.*)$", makefile, re.M)
    seeds = re.search(r"^SWEEP_SEEDS \?= (.*)$", makefile, re.M)
    target = re.search(
        r"^sweep:.*\n\t\$\(PY\) -m caplm\.train (.*) \$\(SWEEP_ARGS\) -m$", makefile, re.M
    )
    assert args and target and seeds, "the Makefile's sweep target or SWEEP_ARGS changed shape"
    args = args.group(1).replace("$(SWEEP_SEEDS)", seeds.group(1))
    return [*target.group(1).split(), *args.split()]


def test_make_sweep_runs_the_paper_grid_on_both_generated_datasets():
    overrides = _make_sweep_overrides()
    parser = OverridesParser.create()
    fixed = [o for o in overrides if not parser.parse_override(o).is_sweep_override()]
    cfg = _compose(fixed)
    jobs = _sweep_jobs(cfg, overrides)
    values = [dict(o.split("=", 1) for o in job) for job in jobs]
    datasets = {v["data"] for v in values}
    assert datasets == {"shapes_lab", "scenes_lab"}
    assert {v["seed"] for v in values} == {
        "1",
        "2",
    }  # the paper grid's first two seeds: under 20 min on 2 cores
    assert len(jobs) == 96  # the paper grid (48 jobs with two seeds) on each dataset
    for job in jobs[:: len(jobs) // 12]:
        composed = _compose([*fixed, *job])
        check_config(composed)
        assert composed.data.name in datasets and composed.hydra.launcher.n_jobs >= 1


def test_paper_grid_is_the_studys_grid_with_controls():
    cfg = _compose(["+experiment=paper_grid"])
    jobs = _sweep_jobs(cfg)
    axes = {
        k: sorted({j[i].split("=")[1] for j in jobs})
        for i, k in enumerate(["corpus", "corpus.size_exponent", "transfer", "seed"])
    }
    assert axes["transfer"] == ["frozen", "init", "none", "random_frozen"]
    assert axes["corpus.size_exponent"] == ["-0.5", "-1", "0"]
    assert len(axes["seed"]) >= 3 and len(axes["corpus"]) >= 2


def test_command_line_beats_the_experiment():
    cfg = _compose(["+experiment=transfer_frozen", "transfer=init", "lm=medium"])
    assert cfg.transfer.mode == "init" and cfg.model.rnn_size == 256


@pytest.mark.parametrize(
    "group,option",
    [
        ("trainer", "cpu"),
        ("trainer", "gpu"),
        ("trainer", "ddp"),
        ("logger", "csv"),
        ("logger", "wandb"),
        ("logger", "none"),
        ("data", "flickr8k"),
        ("data", "flickr8k_text"),
        ("data", "flickr30k"),
        ("data", "mscoco"),
        ("corpus", "sotu"),
        ("corpus", "textfile"),
        ("lm", "large"),
        ("data/encoder", "small_cnn"),
    ],
)
def test_group_options_compose(group, option):
    cfg = _compose([f"{group}={option}"])
    assert cfg is not None


@pytest.mark.parametrize("data", ["shapes", "scenes", "shapes_lab", "scenes_lab"])
def test_generated_datasets_take_tapped_features_and_other_encoders_replace_them(data):
    encoder = build_encoder({**_compose([f"data={data}"]).data.encoder, "device": "cpu"})
    assert encoder.identity()["name"] == "efficientnet_lite0" and len(encoder.taps) == 5
    assert encoder.feature_size == 192 * 9 + 32 + 32 * 9 + 24 + 24 * 9  # 2,288
    # another encoder group replaces the tapped one whole: no EfficientNet layer names left
    assert _compose([f"data={data}", "data/encoder=small_cnn"]).data.encoder.taps is None
    assert _compose([f"data={data}", "data/encoder=efficientnet_lite0"]).data.encoder.taps is None
    # real data keeps the last layer pooled, as the study's features
    assert _compose(["data=flickr8k"]).data.encoder.taps is None


@pytest.mark.parametrize(
    "launcher,target",
    [
        ("parallel", "JoblibLauncher"),
        ("gpus", "JoblibLauncher"),
        ("slurm", "SlurmLauncher"),
        pytest.param(
            "ray_gpus",
            "RayLauncher",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                reason="hydra-ray-launcher not installed (pip install -e '.[ray]')",
            ),
        ),
    ],
)
def test_launcher_configs_compose(launcher, target):
    cfg = _compose([f"hydra/launcher={launcher}", "trainer=gpu"])
    assert cfg.hydra.launcher._target_.endswith(target)
    if launcher == "gpus":
        assert OmegaConf.to_container(cfg.hydra.launcher, resolve=True)["n_jobs"] >= 1
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1


def test_job_dirname_is_one_short_folder_name_without_settings_that_do_not_change_results():
    from caplm.runtime.config import MAX_DIRNAME, job_dirname

    assert job_dirname([]) == "default"
    # sorted as the overrides read ("." before "="): the folders of earlier sweeps keep their names
    assert job_dirname(["corpus=captions", "corpus.size_exponent=0"]) == (
        "corpus.size_exponent=0,corpus=captions"
    )
    assert job_dirname(["seed=2", "data/encoder=small_cnn", "+experiment=x"]) == (
        "data.encoder=small_cnn,seed=2"
    )
    assert (
        job_dirname(
            [
                "trainer.enable_progress_bar=false",
                "logger=wandb",
                "threads=1",
                "paths.data_dir=/x/y",
                "transfer=none",
            ]
        )
        == "transfer=none"
    )
    long_a, long_b = (
        [f"data.shapes.x{i}=1" for i in range(30)] + ["seed=11"],
        [f"data.shapes.x{i}=1" for i in range(30)] + ["seed=12"],
    )
    name = job_dirname(long_a)
    assert len(name) <= MAX_DIRNAME and "/" not in name and name != job_dirname(long_b)
    # the seed first and every override kept (keys by their last part), then a hash
    assert name.startswith("seed=11,x0=1,x1=1,x10=1,")
    assert all(f"x{i}=1" in name.split("-")[0].split(",") for i in range(30))
    many = job_dirname([f"data.shapes.x{i}=1" for i in range(60)] + ["seed=11"])
    assert len(many) <= MAX_DIRNAME and many.startswith("seed=11,x0=1,")
    kept, counted = many.split(",+")
    assert len(kept.split(",")) - 1 + int(counted.split("more")[0]) == 60
    path = "/very/long/path/to/a/colleagues/features/file/of/flickr8k.npz"
    ambiguous = job_dirname(["data.features_file=" + path, "corpus.features_file=x", "seed=3"] * 1
                            + [f"model.a{i}=0.001" for i in range(12)])  # fmt: skip
    # the two features_file keys stay whole (their last parts would clash); others shortened
    assert ambiguous.startswith("seed=3,corpus.features_file=x,data.features_file=.very.long")
    assert ",a0=0.001," in ambiguous
    assert path.replace("/", ".") not in ambiguous  # the long value shortened, with a hash
    assert job_dirname(["seed=1", "data.features_file=" + path]) == (
        "data.features_file=" + path.replace("/", ".") + ",seed=1"
    )  # short enough: as it is


def test_paper_flickr8k_is_the_studys_grid_with_its_hyper_parameters():
    import csv

    cfg = _compose(["+experiment=paper_flickr8k"])
    jobs = _sweep_jobs(cfg)
    assert len(jobs) == 3 * 5 * 4 * 5  # study cell x exponent x transfer x run
    # a copy of the study's hyper-parameters as its authors' files give them (../shared/)
    with open(Path(__file__).with_name("study_hyperparams.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    for corpus in ("flickr8k", "mscoco", "lm1b"):
        c = _resolved(_compose(["+experiment=paper_flickr8k", f"+study={corpus}"]))
        assert c["data"]["normaliser"] == "study" and c["corpus"]["name"] in (corpus, "captions")
        assert c["lm"]["fit"]["max_epochs"] == c["model"]["fit"]["max_epochs"] == 100
        assert c["lm"]["fit"]["patience"] == c["model"]["fit"]["patience"] == 1
        for row in rows:
            if row["corpus"] != corpus:
                continue
            node = c["lm"] if row["stage"] == "lm" else c["model"]
            assert (node["embed_size"], node["rnn_size"]) == (int(row["embed_size"]),
                                                              int(row["rnn_size"]))  # fmt: skip
            assert node["optimizer"] == row["optimizer"]
            assert node["lr"] == float(row["learning_rate"])
            assert node["weight_decay"] == float(row["weights_reg_weight"])
            assert node["embed_dropout"] == float(row["embedding_dropout_prob"])
            assert node["rnn_dropout"] == float(row["rnn_dropout_prob"])
            assert node["fit"]["batch_size"] == int(row["minibatch_size"])
            assert node["fit"]["gradient_clip_val"] == float(row["max_gradient_norm"])
            if row["stage"] == "generator":
                assert node["post_image_size"] == int(row["post_image_size"])
                assert node["image_activation"] == row["post_image_activation"]
                assert node["image_dropout"] == float(row["image_dropout_prob"])
                assert c["generation"]["beam_width"] == int(row["beam_width"])
    in_domain = _compose(["+experiment=paper_flickr8k", "+study=flickr8k"])
    assert in_domain.corpus.max_size_exponent == 0  # e 0.5 and 1: not applicable
