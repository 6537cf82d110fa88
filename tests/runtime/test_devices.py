"""GPU assignment, simulated on the CPU with lists of fake device ids; CPU threads per job."""

import multiprocessing as mp

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from caplm import CONF_DIR
from caplm.runtime import config, devices


@pytest.fixture(autouse=True)
def _release():
    devices.release_device()
    yield
    devices.release_device()


def _worker(ids, lock_dir, jobs, barrier, out):
    # a pool worker running several jobs: each job asks for a device
    got = [devices.claim_device(ids, lock_dir, poll_s=0.05) for _ in range(jobs)]
    barrier.wait()  # hold the devices until every worker has claimed
    out.put(got)


def _run_workers(n_workers, ids, lock_dir, jobs=2):
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(n_workers), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(ids, lock_dir, jobs, barrier, out))
        for _ in range(n_workers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    return results


def test_concurrent_workers_get_distinct_devices_and_keep_them(tmp_path):
    ids = ["GPU-a", "GPU-b", "GPU-c", "GPU-d"]
    results = _run_workers(4, ids, tmp_path, jobs=3)
    firsts = [r[0] for r in results]
    assert sorted(firsts) == [0, 1, 2, 3]  # no two concurrent workers share a device
    assert all(len(set(r)) == 1 for r in results)  # a worker's later jobs keep its device


def test_an_extra_worker_waits_for_a_free_device(tmp_path):
    ids = ["GPU-a", "GPU-b"]
    ctx = mp.get_context("fork")
    out = ctx.Queue()

    def hold_then_exit(q):
        q.put(devices.claim_device(ids, tmp_path, poll_s=0.05))
        import time

        time.sleep(0.5)

    holders = [ctx.Process(target=hold_then_exit, args=(out,)) for _ in range(2)]
    for p in holders:
        p.start()
    assert sorted(out.get(timeout=10) for _ in holders) == [0, 1]
    # both held: this process waits until a holder exits, then gets its device
    got = devices.claim_device(ids, tmp_path, poll_s=0.05)
    assert got in (0, 1)
    for p in holders:
        p.join()


def test_devices_released_when_a_process_dies(tmp_path):
    ids = ["GPU-only"]
    ctx = mp.get_context("fork")
    p = ctx.Process(target=devices.claim_device, args=(ids, tmp_path))
    p.start()
    p.join()
    assert devices.claim_device(ids, tmp_path, poll_s=0.05) == 0


def test_pin_trainer_devices_leaves_cpu_and_ddp_alone(monkeypatch, tmp_path):
    assert devices.pin_trainer_devices({"accelerator": "cpu", "devices": 1})["devices"] == 1
    ddp = {"accelerator": "gpu", "devices": -1, "strategy": "ddp"}
    assert devices.pin_trainer_devices(ddp) == ddp
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["GPU-x", "GPU-y"])
    monkeypatch.setattr(devices, "default_lock_dir", lambda: tmp_path)
    assert devices.pin_trainer_devices({"accelerator": "gpu", "devices": 1})["devices"] == [0]


def test_no_visible_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="no GPU visible"):
        devices.claim_device([], tmp_path)


JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


@pytest.mark.parametrize(
    ("threads", "launcher", "cores", "expected"),
    [
        (None, {"_target_": JOBLIB, "n_jobs": 2}, 16, 8),  # hydra/launcher=parallel
        (None, {"_target_": JOBLIB, "n_jobs": 3}, 2, 1),  # never below one
        (None, {"_target_": JOBLIB, "n_jobs": -1}, 4, 1),  # joblib's "all cores"
        (None, {"_target_": JOBLIB, "n_jobs": -2}, 4, 1),  # all but one: 3 jobs on 4 cores
        (None, {"_target_": JOBLIB, "n_jobs": 1}, 4, None),  # one at a time: torch's default
        (None, {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 4, None),
        (None, None, 4, None),  # not under Hydra
        (3, {"_target_": JOBLIB, "n_jobs": 2}, 16, 3),  # threads= wins
    ],
)
def test_parallel_jobs_share_the_cores_instead_of_oversubscribing_them(
    threads, launcher, cores, expected
):
    assert devices.job_threads(threads, launcher, cores=cores) == expected


def test_the_parallel_launcher_config_gives_each_job_its_share():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=parallel"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert devices.job_threads(None, cfg.hydra.launcher, cores=8) == 8 // cfg.hydra.launcher.n_jobs


@pytest.mark.parametrize(
    ("cores", "memory_gib", "expected"),
    [(2, 24, 2), (16, 128, 16), (64, 64, 32), (4, 1, 1)],  # by cores, then by memory; never 0
)
def test_the_parallel_launcher_runs_a_job_per_core_as_far_as_memory_holds(
    monkeypatch, cores, memory_gib, expected
):
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gib * 2**30 // 4096}
    monkeypatch.setattr(config.os, "sysconf", pages.__getitem__)
    monkeypatch.setattr(config, "available_cores", lambda: cores)
    assert config.cpu_jobs(2) == expected
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=parallel"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher.n_jobs == expected


@pytest.mark.parametrize(
    "cuda, bf16, accelerator, expected",
    [
        (True, True, "gpu", "bf16-mixed"),  # an Ampere-or-later GPU
        (True, False, "gpu", "32-true"),  # an older GPU: float32, said in the log
        (False, False, "gpu", "32-true"),
        (True, True, "cpu", "32-true"),  # a CPU job on a GPU machine stays float32
    ],
)
def test_bf16_where_supported_resolves_by_the_gpu(monkeypatch, cuda, bf16, accelerator, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    cfg = {"accelerator": accelerator, "precision": devices.BF16_WHERE_SUPPORTED}
    assert devices.resolve_precision(cfg) == {**cfg, "precision": expected}
    assert devices.resolve_precision({**cfg, "precision": "16-mixed"})["precision"] == "16-mixed"


def test_trainer_gpu_asks_for_bf16_where_supported_and_can_turn_it_off():
    from omegaconf import OmegaConf

    gpu = OmegaConf.load(CONF_DIR / "trainer" / "gpu.yaml")
    assert gpu.precision == devices.BF16_WHERE_SUPPORTED
    assert OmegaConf.load(CONF_DIR / "trainer" / "cpu.yaml").precision == "32-true"
