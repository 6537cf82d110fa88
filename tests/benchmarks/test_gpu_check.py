"""make gpu-check's script, on the CPU path (no GPU is lent to the tests)."""

import json

import pytest

from benchmarks import gpu_check


def test_the_steps_ask_for_the_gpu_launcher_slots_and_both_precisions(tmp_path):
    gpu = gpu_check.commands(cpu=False, out=tmp_path)
    (bench,) = gpu["bench"]
    assert "gpu_grid,anchor" in bench and bench[bench.index("--device") + 1] == "cuda"
    bf16, fp32 = gpu["precision"]
    for argv in (bf16, fp32, *gpu["sweep"]):
        assert {"trainer=gpu", "hydra/launcher=gpus", "-m"} <= set(argv)
    assert "trainer.precision=bf16-where-supported" in bf16 and "trainer.precision=32-true" in fp32
    assert {"jobs_per_gpu=2"} <= set(bf16) & set(fp32)
    assert {"jobs_per_gpu=4", "seed=1,2,3,4"} <= set(gpu["sweep"][0])
    cpu = gpu_check.commands(cpu=True, out=tmp_path)
    assert all("trainer=cpu" in argv for argv in (*cpu["precision"], *cpu["sweep"]))
    assert "--quick" in cpu["bench"][0] and "model.fit.max_epochs=1" in cpu["sweep"][0]
    for argv in (*cpu["precision"], *cpu["sweep"]):  # each setting once (Hydra refuses twice)
        keys = [a.split("=")[0] for a in argv if "=" in a]
        assert len(keys) == len(set(keys))


def _job(folder, **results):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"job/status": "complete", **results}))


def test_the_summary_gives_how_far_bf16_moves_each_metric(tmp_path):
    mr = tmp_path / "mr"
    _job(mr / "gpu_check_bf16" / "a", **{"capgen/test_BLEU-4": 0.25, "capgen/test_CIDEr": 0.9})
    _job(mr / "gpu_check_fp32" / "a", **{"capgen/test_BLEU-4": 0.2, "capgen/test_CIDEr": 1.0})
    for seed in range(3):
        _job(mr / "gpu_check_sweep" / str(seed), **{"job/total_time_s": 10.0 + seed})
    _job(mr / "gpu_check_sweep" / "3", **{"job/status": "failed"})
    summary = gpu_check.summarise(tmp_path, cpu=True, times={"sweep": 12.5}, device="cpu")
    bleu = summary["precision"]["capgen/test_BLEU-4"]
    assert bleu["bf16_minus_fp32"] == pytest.approx(0.05)
    assert summary["precision"]["capgen/test_CIDEr"]["bf16_minus_fp32"] == pytest.approx(-0.1)
    assert summary["sweep"] == {"jobs": 4, "complete": 3, "wall_s": 12.5,
                                "job_total_s": [10.0, 11.0, 12.0, None]}  # fmt: skip
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    md = (tmp_path / "summary.md").read_text()
    assert "capgen/test_BLEU-4: bf16 0.25, fp32 0.2, difference +0.05" in md
    assert "3 of 4 jobs complete in 12.5 s" in md


def test_a_missing_precision_job_is_named_in_the_summary(tmp_path):
    _job(tmp_path / "mr" / "gpu_check_bf16" / "a", **{"capgen/test_BLEU-4": 0.25})
    summary = gpu_check.summarise(tmp_path, cpu=True, times={}, device="cpu")
    assert summary["precision"] == {"error": "expected one bf16 and one float32 job, found 1 and 0"}


def test_without_a_gpu_only_the_cpu_path_or_a_dry_run_is_offered(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path)])
    assert "--cpu runs the CPU path" in capsys.readouterr().err
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    assert "trainer=gpu" in capsys.readouterr().out and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_the_cpu_path_runs_every_step_and_writes_one_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPLM_DATA_DIR", str(tmp_path / "data"))
    assert gpu_check.main(["--cpu", "--out", str(tmp_path / "check")]) == 0
    summary = json.loads((tmp_path / "check" / "summary.json").read_text())
    assert summary["sweep"]["jobs"] == 4 and summary["sweep"]["complete"] == 4
    assert "error" not in summary["precision"]
    # on the CPU both runs are float32: the same job, the same metrics
    assert all(row["bf16_minus_fp32"] == 0 for row in summary["precision"].values())
    assert "paper_flickr8k_on_1_devices" in summary["bench"]
