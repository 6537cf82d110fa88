"""``python -m caplm.plan``: what a run or a sweep would do, without training (#39.8)."""

import re
import subprocess
import sys

from caplm import PROJECT_ROOT
from caplm.runtime.dry_run import main, plan
from caplm.train import run
from tests.conftest import TINY, compose_config

#: transfer=none,init x seed=1,2 x e=0,1 on the in-domain corpus (max e 0), in Hydra's order.
SWEEP = ["transfer=none,init", "seed=1,2", "corpus.size_exponent=0,1"]
STATES = ["done", "reusable", "to run", "reusable", "to run", "not applicable", "to run",
          "not applicable"]  # fmt: skip


def test_plan_names_each_jobs_state_the_lms_to_train_and_an_estimate(tmp_path, capsys):
    """init at e 1 is not applicable; none at e 1 is the job of e 0 again (no LM, no corpus);
    the first job ran beforehand, in the folder the plan names for it."""
    common = [*TINY, f"paths.data_dir={tmp_path}/data", f"paths.multirun_dir={tmp_path}/mr"]
    rows = plan([*common, *SWEEP], multirun=True)
    assert [r["state"] for r in rows] == ["to run", "reusable", "to run", "reusable", "to run",
                                          "not applicable", "to run", "not applicable"]  # fmt: skip
    first = rows[0]["dir"].relative_to(tmp_path)
    cfg = compose_config(
        tmp_path, ["transfer=none", "seed=1", "corpus.size_exponent=0"], str(first)
    )
    assert run(cfg)["job/status"] == "complete"

    assert main([*common, *SWEEP, "-m"]) == 0
    out = capsys.readouterr().out
    listed = [re.split(r"\s{2,}", line) for line in out.splitlines()[:8]]
    assert [row[0] for row in listed] == STATES
    assert [row[1] for row in listed] == [r["name"] for r in rows]
    assert "8 jobs: 1 done, 2 reusable, 3 to run, 2 not applicable" in out
    assert "2 distinct LMs to train" in out  # seeds 1 and 2 of init
    assert "estimated run time on one worker: " in out  # the no-transfer job's shape is known
    assert "not counted, no earlier job of their shape: LMs of shapes/small/captions/0, " \
           "jobs of shapes/init/rnn" in out  # fmt: skip
    assert not rows[2]["dir"].exists()  # nothing ran


def test_plan_answers_help():
    done = subprocess.run([sys.executable, "-m", "caplm.plan", "--help"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and "usage: python -m caplm.plan" in done.stdout
