"""The distributed engines for real: a small multirun through submitit's local executor
(``hydra/launcher=submitit_local``: the SLURM launcher's code path minus the scheduler) and
one through the Ray launcher on a local Ray cluster it starts (``hydra/launcher=ray_gpus``
with no GPUs asked for; needs ``pip install -e '.[ray]'``, else skipped) give the results
files of Hydra's basic launcher, train a shared LM once, and skip complete jobs when run
again."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from caplm.results import COMPLETE, RESULTS_FILE
from tests.e2e.test_fault_injection import NOT_COMPARED, TIMING
from tests.e2e.test_sweeps import _finish, _train

#: Two jobs that need the same LM (init and frozen transfer of one LM), and the control.
GRID = ["transfer=none,init,frozen", "seed=1", "threads=1", "logger=none"]
SUBMITIT_LOCAL = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=20"]
#: Ray on this machine's CPUs: the GPU launcher config with no GPU per job.
RAY_LOCAL = [
    "hydra/launcher=ray_gpus",
    "hydra.launcher.ray.init.num_gpus=0",
    "+hydra.launcher.ray.init.num_cpus=2",
    "hydra.launcher.ray.remote.num_gpus=0",
]
LAUNCHERS = {
    "submitit_local": (SUBMITIT_LOCAL, "hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": (RAY_LOCAL, "hydra_plugins.hydra_ray_launcher", "ray"),
}
#: ... and what differs between launchers by design (where the job ran, its path).
LAUNCHER_BOOKKEEPING = {"job/reused_from", "job/dir", "job/sweep_dir"}


def sweep(tmp: Path, name: str, launcher: list[str]) -> dict[str, dict]:
    """Run the grid into tmp/name; results per job, keyed by its transfer mode."""
    out = _finish(_train(["-m", *GRID, *launcher, f"hydra.sweep.dir={tmp / name}"], tmp), 600)
    results = [json.loads(p.read_text()) for p in (tmp / name).glob(f"*/{RESULTS_FILE}")]
    assert len(results) == 3, out[-2000:]
    return {r["job/transfer"]: r for r in results}


def compared(result: dict) -> dict:
    skip = NOT_COMPARED | LAUNCHER_BOOKKEEPING
    return {k: v for k, v in result.items() if k not in skip and not k.startswith(TIMING)}


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("basic"), "sweep", [])


def launcher_param(name: str):
    _, module, extra = LAUNCHERS[name]
    missing = importlib.util.find_spec(module) is None
    reason = f"{module} not installed (pip install -e '.[{extra}]')"
    return pytest.param(name, marks=pytest.mark.skipif(missing, reason=reason))


@pytest.mark.slow
@pytest.mark.parametrize("name", [launcher_param(n) for n in LAUNCHERS])
def test_a_distributed_launcher_gives_the_basic_launchers_results_and_resumes(
    basic, tmp_path, name
):
    launcher = LAUNCHERS[name][0]
    local = sweep(tmp_path / "b", "sweep", launcher)
    for mode in ("none", "init", "frozen"):
        assert local[mode]["job/status"] == COMPLETE
        assert compared(local[mode]) == compared(basic[mode]), mode
    # the jobs ran in the engine's worker processes, and the two LM jobs shared one LM
    assert os.getpid() not in {r["job/pid"] for r in local.values()}
    if name == "submitit_local":
        assert (tmp_path / "b" / "sweep" / ".submitit").is_dir()
    assert local["init"]["lm/cache_key"] == local["frozen"]["lm/cache_key"]
    assert [local[m]["lm/trained_here"] for m in ("init", "frozen")].count(True) == 1
    lm_entries = list((tmp_path / "b" / "data" / "cache" / "lm").glob("*/lm.pt"))
    assert len(lm_entries) == 1

    # the same command again: every job is complete, so none is rewritten
    files = list((tmp_path / "b" / "sweep").glob(f"*/{RESULTS_FILE}"))
    before = {p: p.stat().st_mtime_ns for p in files}
    sweep(tmp_path / "b", "sweep", launcher)
    assert before == {p: p.stat().st_mtime_ns for p in files}
