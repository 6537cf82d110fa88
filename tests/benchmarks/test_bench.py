"""The benchmark runs and reports; its speed targets are read by people, not asserted here."""

import json
from collections import Counter

import pytest

from benchmarks.bench import BENCHES, Timing, main


def test_quick_run_of_two_groups_writes_positive_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "ranks,train_step", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    figures = result["figures"]
    assert {f["group"] for f in figures.values()} == {"ranks", "train_step"}
    assert {"train_step_128", "train_step_256"} <= set(figures)
    for fig in figures.values():
        assert fig["value"] > 0 and fig["repeats"] >= 1, fig
    assert figures["train_step_256"]["vs"] == "train_step_128"
    assert figures["train_step_256"]["ratio"] > 0
    assert result["meta"]["quick"] is True and result["skipped"] == {}
    printed = capsys.readouterr().out
    assert all(name in printed for name in figures)


def test_unknown_group_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "ranks,nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and all(name in err for name in BENCHES)


def test_timing_scales_every_repeat():
    timing = Timing((1.0, 2.0, 4.0)) / 2 * 1000
    assert timing.median == 1000.0 and timing.spread == pytest.approx(1.5)


def test_transformer_group_compares_with_the_gru_and_the_uncached_search(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "transformer", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["figures"]
    assert figures["train_step_transformer_small"]["vs"] == "train_step_small"
    assert figures["beam4_transformer_small"]["vs"] == "beam4_small"
    cached = figures["beam4_transformer_small_kv_cache"]
    assert cached["vs"] == "beam4_transformer_small_uncached" and cached["ratio"] > 0


@pytest.mark.slow
def test_study_sizes_group_gives_ratios_and_peak_memory(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "study_sizes", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["figures"]
    assert figures["lightning_fit_step"]["vs"] == "hand_step"
    assert figures["hand_step_rate"]["vs"] == "matmul_peak"
    assert 0 < figures["hand_step_rate"]["ratio"] < 2  # a step cannot beat the peak by far
    assert figures["beam4_batched"]["vs"] == "beam4_one_image_at_a_time"
    assert figures["peak_rss_training"]["value"] > 50  # MB: torch alone is more


def test_study_scale_text_survives_the_study_normaliser_with_a_zipf_tail():
    from benchmarks.study_scale import zipf_sentences
    from caplm.data.text import study_tokens

    sentences = zipf_sentences(2000, 5000, 1.2, (8, 12), seed=3)
    assert sentences == zipf_sentences(2000, 5000, 1.2, (8, 12), seed=3)
    assert all(study_tokens(s) == s.split() for s in sentences)  # one token a word, kept whole
    counts = sorted(Counter(w for s in sentences for w in s.split()).values(), reverse=True)
    assert counts[0] > 20 * counts[99] and counts.count(1) > 100  # a head and a long tail
    assert all(8 <= len(s.split()) <= 12 for s in sentences)


def test_a_plain_run_leaves_the_opt_in_groups_out():
    from benchmarks.bench import OPT_IN, default_groups

    assert "study_scale" in OPT_IN and "study_scale" in BENCHES
    assert set(default_groups()) == set(BENCHES) - set(OPT_IN)


@pytest.mark.slow
def test_study_scale_group_measures_both_jobs_and_reads_big_features_from_disk(
    tmp_path, monkeypatch
):
    import caplm.data.features as features

    monkeypatch.setattr(features, "IN_MEMORY_MAX_BYTES", 1024)  # the quick .h5 counts as big
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "study_scale", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["figures"]
    for job in ("lm_job_peak_rss", "mscoco_job_peak_rss"):
        assert 100 < figures[job]["value"] < 8000, figures[job]  # MB: torch alone is ~100
    assert figures["lm_job_vs_target"]["vs"] == "lm_rss_target"
    assert figures["mscoco_rss_vs_file"]["vs"] == "mscoco_features_file"
    for name in ("lm", "mscoco"):
        share = figures[f"{name}_loader_batch"]
        assert share["vs"] == f"{name}_train_step" and share["ratio"] > 0
    assert "DiskRows" in figures["mscoco_loader_batch"]["note"]


def test_robust_group_gives_each_robust_epoch_as_a_ratio_to_a_plain_one(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "robust", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["figures"]
    assert figures["lm_epoch_plain"]["value"] > 0 and figures["lm_epoch_plain"]["ratio"] is None
    for name in ("lm_epoch_noisy", "lm_epoch_adversarial"):
        assert figures[name]["vs"] == "lm_epoch_plain" and figures[name]["ratio"] > 0


def test_the_grid_counts_the_study_flickr8k_lms_and_fits():
    from benchmarks.gpu_grid import GENERATOR_FITS, lm_sizes

    sizes = lm_sizes()
    assert len(sizes) == 65 and GENERATOR_FITS == 130 + 30
    assert sizes.count(10.0) == 10 and sizes.count(0.1) == 15  # e=1: mscoco, lm1b; e=-1: all 3
    assert max(sizes) * 30_000 == pytest.approx(300_000)


def test_predicted_grid_hours_divide_the_work_down_to_the_longest_chain():
    from benchmarks.gpu_grid import GENERATOR_FITS, lm_sizes, predict_hours

    t = {"lm_epoch": 6.0, "gen_epoch": 4.0, "eval": 30.0}
    work = sum(lm_sizes()) * 2 * 6.0 + GENERATOR_FITS * (3 * 4.0 + 30.0)  # 2 LM, 3 gen epochs
    assert predict_hours(t, 2, 3, devices=1, jobs=1) == pytest.approx(work / 3600)
    assert predict_hours(t, 2, 3, devices=2, jobs=4) == pytest.approx(work / 8 / 3600)
    chain = 10 * 2 * 6.0 + 3 * 4.0 + 30.0  # the 300,000-sentence LM, then its generator
    assert predict_hours(t, 2, 3, devices=1000, jobs=16) == pytest.approx(chain / 3600)


def test_grid_options_are_checked():
    with pytest.raises(SystemExit):
        main(["--only", "gpu_grid", "--grid-epochs", "10"])
    with pytest.raises(SystemExit):
        main(["--only", "gpu_grid", "--grid-jobs", "0,2"])


@pytest.mark.slow
def test_gpu_grid_times_concurrent_jobs_and_predicts_the_grid(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--only", "gpu_grid", "--grid-jobs", "1,2", "--json", str(out)]
    assert main(argv) == 0
    figures = json.loads(out.read_text())["figures"]
    for jobs in (1, 2):
        assert figures[f"gen_epoch_{jobs}jobs"]["value"] > 0
        assert figures[f"generator_jobs_per_hour_{jobs}jobs"]["unit"] == "jobs/h"
        assert figures[f"peak_memory_{jobs}jobs"]["value"] > 50  # MB
    hours = [figures[f"paper_flickr8k_on_{n}_devices"]["value"] for n in (1, 2, 4, 8)]
    assert hours == sorted(hours, reverse=True) and hours[0] > 0


def test_anchor_group_sets_caplm_against_a_bare_loop(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "anchor", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["figures"]
    for name in ("caplm_step_dropout_0", "caplm_step_default"):
        assert figures[name]["vs"] == "bare_pytorch_step" and figures[name]["ratio"] > 0
    assert figures["bare_step_rate"]["vs"] == "anchor_matmul_peak"
    assert 0 < figures["bare_step_rate"]["ratio"] < 2


def test_bare_merge_has_the_generators_parameter_count_but_its_learned_start():
    from benchmarks.anchor import BareMerge
    from caplm.models.caption_generator import CaptionGenerator

    bare = BareMerge(50, 8, 6, 10, 5)
    gen = CaptionGenerator(50, 10, embed_size=8, rnn_size=6, post_image_size=5)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(gen) - count(bare) == 6  # caplm's learned initial GRU state (init_h)
