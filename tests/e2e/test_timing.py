"""Where a job's time goes: job/time_<stage>_s and the share outside training steps."""

import pytest

from caplm.results import capgen_key, job_key, lm_key, time_key
from caplm.train import run

STAGES = ("data", "lm", "scores", "fit", "eval", "other")


def test_a_jobs_stages_add_up_to_its_time_and_the_overhead_is_what_training_left(make_cfg):
    results = run(make_cfg(["transfer=init", "transferability.enabled=true",
                            "transferability.positions=50", "transferability.samples=1"]))  # fmt: skip
    times = {stage: results[time_key(stage)] for stage in STAGES}
    assert all(t >= 0 for t in times.values()), times
    assert times["fit"] >= results[capgen_key("train_time_s")] * 0.99
    assert sum(times.values()) == pytest.approx(results[job_key("total_time_s")], abs=0.01)
    steps = results[capgen_key("train_time_s")] + results[lm_key("train_time_s")]
    assert results[lm_key("trained_here")] is True
    expected = 1 - steps / results[job_key("total_time_s")]
    assert results[job_key("overhead_frac")] == pytest.approx(expected, abs=1e-3)
    again = run(make_cfg(["transfer=none"], job="none"))
    assert time_key("lm") not in again and time_key("scores") not in again
    assert 0 < again[job_key("overhead_frac")] < 1
