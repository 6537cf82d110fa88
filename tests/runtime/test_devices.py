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


# -- several jobs per GPU (hydra/launcher=gpus jobs_per_gpu=k) -----------------------------------


def _slot_worker(ids, lock_dir, slots, events, lock, claimed, first_wave):
    # a pool worker: claims a slot, says so, holds it until the first wave of workers (as
    # many as there are slots) has claimed, says it frees it, frees it
    import time

    got = devices.claim_slot(ids, lock_dir, poll_s=0.01, slots=slots)
    with lock:
        claimed.value += 1
        events.put(("got", got))
    while claimed.value < first_wave:
        time.sleep(0.01)
    time.sleep(0.05)
    with lock:
        events.put(("free", got))
    devices.release_device()


@pytest.mark.parametrize(("workers", "gpus", "slots"), [(6, 3, 2), (9, 2, 2), (5, 1, 4)])
def test_k_jobs_on_n_simulated_gpus_use_every_slot_once_at_a_time(tmp_path, workers, gpus, slots):
    ids = [f"GPU-{i}" for i in range(gpus)]
    ctx = mp.get_context("fork")
    events, lock, claimed = ctx.Queue(), ctx.Lock(), ctx.Value("i", 0)
    first_wave = min(workers, gpus * slots)
    procs = [
        ctx.Process(
            target=_slot_worker, args=(ids, tmp_path, slots, events, lock, claimed, first_wave)
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    log = [events.get(timeout=60) for _ in range(2 * workers)]
    for p in procs:
        p.join(timeout=10)
    held, most, seen = set(), 0, set()
    for kind, pair in log:
        if kind == "got":
            assert pair not in held  # no slot held by two workers at once
            held.add(pair)
            seen.add(pair)
            most = max(most, len(held))
        else:
            held.remove(pair)
    capacity = gpus * slots
    assert seen == {(d, s) for d in range(gpus) for s in range(slots)}  # every slot was used
    assert most == capacity
    assert all(0 <= d < gpus and 0 <= s < slots for d, s in seen)


def _holding_worker(ids, lock_dir, slots, barrier, out):
    got = devices.claim_slot(ids, lock_dir, poll_s=0.01, slots=slots)
    barrier.wait()  # hold the slot until every worker has one
    out.put(got)


def test_jobs_fill_slot_0_of_every_gpu_before_doubling_up(tmp_path):
    ids = ["GPU-a", "GPU-b"]
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_holding_worker, args=(ids, tmp_path, 4, barrier, out)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    pairs = sorted(out.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=10)
    assert pairs == [(0, 0), (0, 1), (1, 0), (1, 1)]  # 2 jobs per GPU, not 4 on the first


def test_a_dead_workers_slot_is_freed(tmp_path):
    import os
    import signal

    ids = ["GPU-only"]
    ctx = mp.get_context("fork")
    out = ctx.Queue()

    def hold_forever(q):
        q.put(devices.claim_slot(ids, tmp_path, poll_s=0.01, slots=2))
        import time

        time.sleep(60)

    first = ctx.Process(target=hold_forever, args=(out,))
    first.start()
    assert out.get(timeout=10) == (0, 0)
    second = ctx.Process(target=hold_forever, args=(out,))
    second.start()
    assert out.get(timeout=10) == (0, 1)
    os.kill(first.pid, signal.SIGKILL)  # dies without releasing anything
    first.join()
    try:
        assert devices.claim_slot(ids, tmp_path, poll_s=0.01, slots=2) == (0, 0)
    finally:
        second.kill()
        second.join()


def test_a_bad_slot_count_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="jobs_per_gpu must be a positive integer"):
        devices.claim_slot(["GPU-a"], tmp_path, slots=0)


@pytest.mark.parametrize(
    ("gpu_gib", "gib_per_job", "gpus", "cores", "expected"),
    [
        (80, 2, 1, 16, 16),  # an H100 on a 16-core machine: the cores cap it
        (80, 2, 8, 16, 2),  # 8 GPUs share the 16 cores
        (24, 2, 1, 64, 12),  # memory caps it
        (1, 2, 1, 16, 1),  # never 0
        (None, 2, 1, 16, 1),  # no GPU
    ],
)
def test_default_jobs_per_gpu_by_memory_then_cores(gpu_gib, gib_per_job, gpus, cores, expected):
    assert devices.default_jobs_per_gpu(gpu_gib, gib_per_job, gpus, cores) == expected


@pytest.mark.parametrize(
    ("launcher", "gpus", "expected"),
    [
        ({"_target_": JOBLIB, "n_jobs": 8}, 2, 4),
        ({"_target_": JOBLIB, "n_jobs": 3}, 2, 2),  # rounded up: no worker waits for ever
        ({"_target_": JOBLIB, "n_jobs": 1}, 4, 1),
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 2, 1),
        (None, 2, 1),
    ],
)
def test_slots_per_gpu_from_the_launchers_jobs(launcher, gpus, expected):
    assert devices.slots_per_gpu(launcher, gpus) == expected


def test_pin_trainer_devices_claims_a_slot_of_the_launchers_share(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["GPU-x"])
    monkeypatch.setattr(devices, "default_lock_dir", lambda: tmp_path)
    launcher = {"_target_": JOBLIB, "n_jobs": 2}
    cfg = {"accelerator": "gpu", "devices": 1}
    ctx = mp.get_context("fork")
    out = ctx.Queue()

    def other_worker(q):  # holds slot 0 of the only GPU while this process claims
        q.put(devices.pin_trainer_devices(cfg, launcher)["devices"])
        import time

        time.sleep(60)

    other = ctx.Process(target=other_worker, args=(out,))
    other.start()
    try:
        assert out.get(timeout=10) == [0]
        assert devices.pin_trainer_devices(cfg, launcher)["devices"] == [0]  # slot 1, no wait
        assert devices.claim_slot(["GPU-x"], tmp_path) == (0, 1)
    finally:
        other.kill()
        other.join()


@pytest.mark.parametrize(
    ("overrides", "memory_gib", "expected"),
    [(["jobs_per_gpu=4"], 80, 12), ([], 80, 3 * 5), ([], 4, 3 * 2), ([], None, 3)],
)
def test_the_gpus_launcher_runs_jobs_per_gpu_on_every_gpu(
    monkeypatch, overrides, memory_gib, expected
):
    # 3 simulated GPUs on a 16-core machine: by default 16 // 3 = 5 jobs each, fewer when
    # the memory (at 2 GiB a job) holds fewer
    monkeypatch.setattr(config, "num_gpus", lambda: 3)
    monkeypatch.setattr(config, "available_cores", lambda: 16)
    monkeypatch.setattr(devices, "gpu_memory_gib", lambda: memory_gib)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=["hydra/launcher=gpus", *overrides], return_hydra_config=True
        )
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher.n_jobs == expected
    assert devices.slots_per_gpu(cfg.hydra.launcher, 3) == expected // 3
