"""``make gpu-check``: the checks to run when a GPU is at hand, one summary file at the end.

1. the ``gpu_grid`` and ``anchor`` bench groups on the GPU (jobs per hour at 1-16 jobs at
   once, the predicted wall time of ``+experiment=paper_flickr8k``, the peak memory of a job);
2. a short ``trainer=gpu`` job in bf16 (``bf16-where-supported``) and in float32, side by side
   (two ``hydra/launcher=gpus jobs_per_gpu=2`` runs at once: their workers hold the GPU's two
   slots), and how far bf16 moves the test metrics;
3. a 4-job ``hydra/launcher=gpus jobs_per_gpu=4`` sweep (seeds 1-4), its wall time.

Everything goes under ``--out`` (default ``gpu_check/``): ``bench.json``, the multiruns, the
logs, and ``summary.json`` / ``summary.md``. Under 8 minutes on one GPU (an estimate until the
first run: the jobs are the lab's shapes data at 3 LM and 4 generator epochs).

``--cpu`` runs the same steps on the CPU (``trainer=cpu``, quick bench sizes, 1 and 2 jobs at
once): the path the tests take where no GPU is lent. ``--dry-run`` prints the commands only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The short job (the lab's shapes data, reduced epochs) both checks run; ``--cpu``: one epoch.
JOB = {"data": "shapes_lab", "corpus": "captions", "transfer": "frozen", "lm.fit.max_epochs": 3,
       "model.fit.max_epochs": 4, "eval.lm_samples": 20, "eval.spice": "off",
       "trainer.enable_progress_bar": "false", "hydra/launcher": "gpus"}  # fmt: skip
CPU_JOB = {"lm.fit.max_epochs": 1, "model.fit.max_epochs": 1}
#: Test metrics compared between the bf16 and the float32 job.
COMPARED = ("capgen/test_BLEU-4", "capgen/test_METEOR", "capgen/test_CIDEr",
            "capgen/test_pplx_plain_geomean", "lm/captest_pplx_plain_geomean")  # fmt: skip
PRECISIONS = {"bf16": "bf16-where-supported", "fp32": "32-true"}


def commands(cpu: bool, out: Path) -> dict[str, list[list[str]]]:
    """Each step's commands (argv lists; a step's commands run at once), by step."""
    py = [sys.executable]
    bench = [
        *py,
        "-m",
        "benchmarks",
        "--only",
        "gpu_grid,anchor",
        "--json",
        str(out / "bench.json"),
    ]
    bench += ["--device", "cpu", "--quick", "--grid-jobs", "1,2"] if cpu else ["--device", "cuda"]

    def train(**settings) -> list[str]:
        job = {**JOB, "trainer": "cpu" if cpu else "gpu", **(CPU_JOB if cpu else {}), **settings}
        return [*py, "-m", "caplm.train", *(f"{k}={v}" for k, v in job.items()), "-m"]

    # trainer.* is not part of a job's folder name: each precision is a run (task) of its own
    precision = [train(task_name=f"gpu_check_{name}", jobs_per_gpu=2, **{"trainer.precision": p})
                 for name, p in PRECISIONS.items()]  # fmt: skip
    sweep = train(task_name="gpu_check_sweep", jobs_per_gpu=4, seed="1,2,3,4")
    return {"bench": [bench], "precision": precision, "sweep": [sweep]}


def job_results(multirun: Path) -> list[dict]:
    """The results.json of every job under a multirun folder (sorted by folder)."""
    return [json.loads(p.read_text()) for p in sorted(multirun.glob("*/results.json"))]


def compare_precisions(bf16: list[dict], fp32: list[dict]) -> dict:
    """The bf16 and the float32 job's test metrics, and bf16 - float32, for ``COMPARED``."""
    if len(bf16) != 1 or len(fp32) != 1:
        return {
            "error": f"expected one bf16 and one float32 job, found {len(bf16)} and {len(fp32)}"
        }
    by = {"bf16": bf16[0], "fp32": fp32[0]}
    rows = {}
    for key in COMPARED:
        a, b = by["bf16"].get(key), by["fp32"].get(key)
        if isinstance(a, int | float) and isinstance(b, int | float):
            rows[key] = {"bf16": a, "fp32": b, "bf16_minus_fp32": a - b}
    return rows


def summarise(out: Path, cpu: bool, times: dict, device: str) -> dict:
    """``summary.json`` and ``summary.md`` under ``out`` from what the steps left there."""
    bench_file = out / "bench.json"
    bench = json.loads(bench_file.read_text())["figures"] if bench_file.is_file() else {}
    sweep = job_results(out / "mr" / "gpu_check_sweep")
    summary = {
        "device": device,
        "cpu_path": cpu,
        "step_seconds": times,
        "bench": {
            k: {f: v[f] for f in ("value", "unit", "ratio", "vs", "note")} for k, v in bench.items()
        },  # fmt: skip
        "precision": compare_precisions(
            *(job_results(out / "mr" / f"gpu_check_{name}") for name in PRECISIONS)
        ),
        "sweep": {
            "jobs": len(sweep),
            "complete": sum(r.get("job/status") == "complete" for r in sweep),
            "wall_s": times.get("sweep"),
            "job_total_s": [r.get("job/total_time_s") for r in sweep],
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"# gpu-check on {device}" + (" (CPU path)" if cpu else ""), "",
             f"Step wall times (s): {json.dumps(times)}", "", "## Bench", ""]  # fmt: skip
    for name, fig in summary["bench"].items():
        ratio = f" ({fig['ratio']:.3g}x {fig['vs']})" if fig["ratio"] is not None else ""
        lines.append(f"- {name}: {fig['value']:.4g} {fig['unit']}{ratio}")
    lines += ["", "## bf16 vs float32 (test metrics)", ""]
    precision = summary["precision"]
    if "error" in precision:
        lines.append(precision["error"])
    for key, row in precision.items() if "error" not in precision else ():
        lines.append(f"- {key}: bf16 {row['bf16']:.4g}, fp32 {row['fp32']:.4g}, "
                     f"difference {row['bf16_minus_fp32']:+.4g}")  # fmt: skip
    s = summary["sweep"]
    lines += ["", "## hydra/launcher=gpus jobs_per_gpu=4", "",
              f"{s['complete']} of {s['jobs']} jobs complete in {s['wall_s']} s"]  # fmt: skip
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("gpu_check"), help="(default gpu_check/)")
    parser.add_argument("--cpu", action="store_true", help="the same steps on the CPU, smaller")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    import torch

    if not args.cpu and not args.dry_run and not torch.cuda.is_available():
        parser.error("no GPU here (torch.cuda.is_available() is False); --cpu runs the CPU path")
    out = args.out.resolve()
    steps = commands(args.cpu, out)
    if args.dry_run:
        for name, step in steps.items():
            for argv_ in step:
                print(f"{name}: {' '.join(argv_)}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CAPLM_MULTIRUN_DIR": str(out / "mr"), "HYDRA_FULL_ERROR": "1",
           "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}  # fmt: skip
    times, failed = {}, []
    for name, step in steps.items():
        start, running = time.perf_counter(), []
        for i, argv_ in enumerate(step):
            print(f"== {name}: {' '.join(argv_)}", flush=True)
            log = out / f"{name}{i if len(step) > 1 else ''}.log"
            with open(log, "w") as f:
                proc = subprocess.Popen(argv_, env=env, stdout=f, stderr=subprocess.STDOUT)
            running.append((proc, log))
        for proc, log in running:
            if proc.wait():
                failed.append(f"{name} (exit {proc.returncode}, see {log})")
        times[name] = round(time.perf_counter() - start, 1)
    device = "cpu" if args.cpu else torch.cuda.get_device_name(0)
    summarise(out, args.cpu, times, device)
    print((out / "summary.md").read_text())
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
