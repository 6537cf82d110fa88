import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from caplm.report import collect, correlations, latest_sweep, main, scan, summarize
from caplm.report import markdown as report_markdown
from caplm.report import sweep as report_sweep
from caplm.report.summary import spearman_test
from caplm.results import RESULTS_FILE, coverage_key, metric_key, pplx_key

CIDER, METEOR, LM_PPLX = (
    metric_key("CIDEr"),
    metric_key("METEOR"),
    pplx_key("lm", "captest", "per_word"),
)

# Per (corpus, size exponent): LM perplexity on the caption test set, and the CIDEr of the
# generators it feeds (init, frozen). In-domain numbers follow the study; "sotu" is an
# out-of-domain corpus whose LMs are much worse on captions and transfer worse.
LMS = {
    ("captions", -1.0): (46.0, 0.46, 0.45),
    ("captions", 0.0): (25.8, 0.48, 0.47),
    ("sotu", -1.0): (420.0, 0.33, 0.36),
    ("sotu", 0.0): (310.0, 0.38, 0.30),
}
CONTROLS = {"none": 0.451, "random_frozen": 0.341}
OOV = {"captions": 0.0, "sotu": 0.125}  # test-caption tokens outside the LM's vocabulary


def jitter(seed: int) -> float:
    return {1: -1.0, 2: 1.0, 3: 0.5}[seed]


def fake_results(corpus, transfer, e, seed, experiment="transfer", status="complete"):
    """A results.json as caplm.train writes it, with realistic numbers."""
    has_lm = transfer in ("init", "frozen")
    if has_lm:
        pplx, cider_init, cider_frozen = LMS[(corpus, e)]
        pplx *= 1 + 0.02 * jitter(seed)
        cider = cider_init if transfer == "init" else cider_frozen
    else:
        pplx, cider = None, CONTROLS[transfer]
    cider += 0.01 * jitter(seed)
    r = {
        "job/experiment": experiment,
        "job/data": "flickr8k",
        "job/corpus": corpus,
        "job/transfer": transfer,
        "job/size_exponent": e,
        "job/seed": seed,
        "job/lm_max_epochs": 100,
        "job/overrides": [f"corpus={corpus}", f"transfer={transfer}", f"seed={seed}"],
        "job/status": status,
        "job/total_time_s": 300.0 + seed,
        "lm/vocab_size": 2400 if has_lm else None,
        "lm/corpus_size": round(10**e * 30000) if has_lm else None,
        "lm/epochs": 7 if has_lm else None,
        "lm/train_time_s": 40.0 if has_lm else None,
        "capgen/vocab_size": 2100,
        "capgen/epochs": 9,
        "capgen/train_time_s": 200.0,
        coverage_key("lm", "captest", "oov_token_rate"): OOV.get(corpus) if has_lm else None,
    }
    for kind in ("plain", "corrected", "per_word"):  # per_word: the corrected one, as jobs write it
        for stat in ("mean", "median", "geomean"):
            r[pplx_key("lm", "val", kind, stat)] = None if pplx is None else pplx * 0.9
            r[pplx_key("lm", "captest", kind, stat)] = pplx
            r[pplx_key("capgen", "test", kind, stat)] = 15.0 + jitter(seed)
    metrics = {"BLEU-1": 0.6, "BLEU-2": 0.41, "BLEU-3": 0.27, "BLEU-4": 0.18, "ROUGE_L": 0.45}
    for name, value in metrics.items():
        r[metric_key(name)] = value + 0.005 * jitter(seed)
    r[METEOR] = 0.15 + cider / 10
    r[CIDER] = cider
    r[metric_key("SPICE")] = None
    r["capgen/spice_status"] = "skipped: Stanford CoreNLP jar missing"
    r["capgen/test_WMD"] = 0.31  # a key the report does not know must still reach the table
    r.update({"capgen/div_vocab_used": 310 + 10 * seed, "capgen/div_unique_frac": 0.4})
    r.update({"capgen/ret_R@1": 0.05, "capgen/ret_R@10": 0.3, "capgen/ret_median_rank": 40})
    r.update({"transfer/rows": 2000 if has_lm else 0, "transfer/params_frozen": 0})
    return r


def write_sweep(root, experiment, params, task, jobs):
    """A Hydra multirun folder: multirun.yaml and one numbered folder per job."""
    root.mkdir(parents=True)
    hydra = {
        "sweeper": {
            "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
            "max_batch_size": None,
            "params": params,
        },
        "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task},
    }
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra, "seed": 0}))
    for num, (overrides, results) in enumerate(jobs):
        job = root / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": results["job/seed"]}))
        (job / RESULTS_FILE).write_text(json.dumps(results, indent=2))


@pytest.fixture
def sweeps(tmp_path):
    """multirun/grid (2 corpora x 2 sizes x 2 modes x 2 seeds) and multirun/controls."""
    root = tmp_path / "multirun"
    grid = []
    for corpus, e in LMS:
        for transfer in ("init", "frozen"):
            for seed in (1, 2):
                ov = ["+experiment=transfer", f"corpus={corpus}", f"size_exponent={e:g}"]
                ov += [f"transfer={transfer}", f"seed={seed}"]
                grid.append((ov, fake_results(corpus, transfer, e, seed)))
    task = ["+experiment=transfer", "corpus=captions,sotu", "size_exponent=-1,0"]
    write_sweep(root / "grid", "transfer", {"seed": "1,2"}, task + ["transfer=init,frozen"], grid)
    controls = [
        (
            ["+experiment=controls", f"transfer={t}", f"seed={s}"],
            fake_results("none", t, None, s, "controls"),
        )
        for t in CONTROLS
        for s in (1, 2)
    ]
    task = ["+experiment=controls", "transfer=none,random_frozen", "seed=1,2"]
    write_sweep(root / "controls", "controls", {}, task, controls)
    return root


def job_folder(root, **cell):
    """The folder of the job whose results match ``cell`` (keys without job/)."""
    for path in sorted(root.rglob(RESULTS_FILE)):
        r = json.loads(path.read_text())
        if all(r[f"job/{k}"] == v for k, v in cell.items()):
            return path.parent
    raise LookupError(cell)


def test_collect_gives_one_tidy_row_per_job(sweeps):
    df = collect(sweeps)
    assert len(df) == 20
    assert list(df.columns[:9]) == [
        "job_dir", "experiment", "data", "corpus", "transfer", "size_exponent",
        "lm_max_epochs", "seed", "status",
    ]  # fmt: skip
    assert set(df["job_dir"]) >= {"grid/0", "grid/15", "controls/3"}
    assert df["capgen/test_WMD"].eq(0.31).all()
    assert (df["transfer"] == "none").sum() == 2 and (df["transfer"] == "frozen").sum() == 8
    row = df[(df.corpus == "sotu") & (df.transfer == "init") & (df.seed == 2)].iloc[0]
    assert row["size_exponent"] in (-1.0, 0.0)
    assert row[CIDER] == pytest.approx(LMS[("sotu", row["size_exponent"])][1] + 0.01)
    assert row["overrides"] == "corpus=sotu transfer=init seed=2"


def test_summarize_gives_mean_std_and_n_per_cell(sweeps):
    cells = summarize(collect(sweeps))
    assert len(cells) == 4 * 2 + 2  # LM cells x modes, plus the two controls
    cell = cells[(cells.corpus == "captions") & (cells.transfer == "frozen")]
    cell = cell[cell.size_exponent == -1.0].iloc[0]
    a, b = 0.45 - 0.01, 0.45 + 0.01  # seeds 1 and 2
    assert cell["n"] == 2
    assert cell[f"{CIDER}.mean"] == pytest.approx((a + b) / 2)
    assert cell[f"{CIDER}.std"] == pytest.approx(abs(a - b) / np.sqrt(2))  # sample std
    assert cell[f"{LM_PPLX}.mean"] == pytest.approx(46.0)
    baseline = cells[cells.transfer == "none"].iloc[0]
    assert pd.isna(baseline["size_exponent"]) and baseline["n"] == 2
    assert baseline[f"{CIDER}.mean"] == pytest.approx(0.451)
    assert f"{metric_key('SPICE')}.mean" not in cells  # all null: nothing to average


def test_correlations_equal_scipy_on_cell_means(sweeps):
    df = collect(sweeps)
    corr = correlations(df).set_index("transfer")
    assert sorted(corr.index) == ["frozen", "init"]
    for mode in ("init", "frozen"):
        runs = df[df.transfer == mode]
        means = runs.groupby(["corpus", "size_exponent"])[[LM_PPLX, CIDER]].mean()
        rho = stats.spearmanr(means[LM_PPLX], means[CIDER])[0]
        rho_p = stats.permutation_test(  # every pairing of the 4 LMs: the exact p
            (means[LM_PPLX].to_numpy(),),
            lambda a, cider=means[CIDER]: stats.spearmanr(a, cider)[0],
            permutation_type="pairings",
        ).pvalue
        tau, tau_p = stats.kendalltau(means[LM_PPLX], means[CIDER])
        got = corr.loc[mode]
        assert got["n"] == 4
        assert got["spearman_rho"] == pytest.approx(rho) and got["spearman_p"] == pytest.approx(
            rho_p
        )
        assert got["kendall_tau"] == pytest.approx(tau) and got["kendall_p"] == pytest.approx(tau_p)
    # frozen: sotu e=-1 (worse LM) beats sotu e=0, so the ranks disagree; n = 4 is too few
    # for either test to reach p < 0.05 even where the ranks agree (init): 2 of the 24
    # pairings are as extreme as rho = -1.
    assert corr.loc["init", "spearman_rho"] == pytest.approx(-1.0)
    assert corr.loc["init", "spearman_p"] == pytest.approx(2 / 24)
    assert corr.loc["init", "verdict"].endswith(
        "too few LMs for a significant rank correlation: with 4 the smallest two-sided p is "
        "2/4! = 0.08"
    )
    assert corr.loc["frozen", "spearman_rho"] == pytest.approx(-0.8)


def lm_runs(pplx_and_cider, transfer="frozen"):
    rows = []
    for i, (pplx, cider) in enumerate(pplx_and_cider):
        for seed in (1, 2):
            r = fake_results("captions", "frozen", -1.0, seed)
            r.update({"job/size_exponent": i / 2, "job/transfer": transfer})
            r.update({LM_PPLX: pplx + seed, CIDER: cider + 0.001 * seed})
            rows.append({"job_dir": f"{i}-{seed}", **r})
    return report_sweep._tidy(rows)


def test_perfectly_anticorrelated_lms_did_transfer_better():
    df = lm_runs([(300, 0.30), (150, 0.36), (80, 0.40), (46, 0.44), (30, 0.46), (25, 0.48)])
    row = correlations(df).iloc[0]
    assert row["n"] == 6
    assert row["spearman_rho"] == pytest.approx(-1.0) and row["kendall_tau"] == pytest.approx(-1.0)
    assert row["kendall_p"] < 0.05
    assert row["spearman_p"] == pytest.approx(2 / 720)  # 2 of the 6! pairings as extreme
    assert row["verdict"].startswith("frozen: Spearman rho = -1.00 (p = 0.003), Kendall tau")
    assert row["verdict"].endswith("better LMs did transfer better")


@pytest.mark.parametrize("n", [3, 5, 12])
def test_spearman_p_is_a_permutation_p_not_the_t_approximation(n):
    x = np.arange(n, dtype=float)
    y = -x + np.random.default_rng(n).normal(0, n / 4, n)
    rho, p = spearman_test(x, y)
    assert rho == pytest.approx(stats.spearmanr(x, y)[0])
    exact = stats.permutation_test(
        (y,), lambda a: stats.spearmanr(x, a)[0], permutation_type="pairings",
        n_resamples=10**6 if n <= 8 else 20000, random_state=0,
    ).pvalue  # fmt: skip
    assert p == pytest.approx(exact, abs=0 if n <= 8 else 0.01)
    if n == 3:  # a perfect order of 3 points: 2 of 6 pairings are as extreme
        assert spearman_test(x, -x) == (pytest.approx(-1.0), pytest.approx(1 / 3))
        assert stats.spearmanr(x, -x)[1] < 0.001  # scipy's t approximation claims much more


def test_significant_positive_correlation_says_better_lms_transferred_worse():
    df = lm_runs([(300, 0.48), (150, 0.46), (80, 0.44), (46, 0.40), (30, 0.36), (25, 0.30)])
    assert correlations(df).iloc[0]["verdict"].endswith("better LMs transferred worse")


def test_too_few_lms_to_correlate():
    corr = correlations(lm_runs([(300, 0.30), (25, 0.48)], transfer="init"))
    assert corr["verdict"].tolist() == ["init: too few LMs to correlate (n = 2)"]
    assert pd.isna(corr.iloc[0]["spearman_rho"])


def test_main_writes_tables_plots_and_report(sweeps, capsys):
    assert main([str(sweeps)]) == 0
    out = sweeps / "report"
    printed = capsys.readouterr().out
    assert str(out / "report.md") in printed
    assert "init: Spearman rho = -1.00 (p = 0.08), Kendall tau = -1.00 (p = 0.08)" in printed

    assert len(pd.read_csv(out / "results.csv")) == 20
    assert len(pd.read_csv(out / "summary.csv")) == 10
    assert set(pd.read_csv(out / "correlations.csv")["transfer"]) == {"init", "frozen"}
    assert (out / "results.md").read_text().count("\n| grid/") == 16
    for name in ("cider_vs_lm_pplx", "meteor_vs_lm_pplx", "cider_vs_size", "meteor_vs_size"):
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1024
        assert f"]({name}.png)" in (out / "report.md").read_text()

    md = (out / "report.md").read_text()
    assert f"# caplm report: `{sweeps}`" in md
    assert "**20 of 20 jobs complete** (20 job folders found; 0 incomplete" in md
    assert "In every cell: data = flickr8k, lm_max_epochs = 100." in md
    assert "| captions | frozen | -1 | 2 | 0.450 ± 0.014 |" in md
    assert "| none | none |  | 2 | 0.451 ± 0.014 |" in md
    assert "SPICE |" not in md  # null in every job
    assert "- skipped: Stanford CoreNLP jar missing: 20 jobs" in md
    assert "one point per grid cell (the mean over its seeds)" in md
    assert "## Incomplete and missing jobs\n\n- none" in md
    assert "## Does transfer help?" in md and "[transfer_effects.csv](transfer_effects.csv)" in md
    effects = pd.read_csv(out / "transfer_effects.csv")
    assert len(effects) == 9 and set(effects["transfer"]) == {"init", "frozen", "random_frozen"}
    assert "| Δ CIDEr [95% CI] | words the LM lacks |" in md
    assert "| sotu | frozen | -1 | 2 | -0.091 [-0.091, -0.091] | 12.5% |" in md
    assert "| captions | init | 0 | 2 | +0.029 [+0.029, +0.029] | 0.0% |" in md
    assert "| none | random_frozen |  | 2 | -0.110 [-0.110, -0.110] |  |" in md
    assert "rho's 95% bootstrap interval [" in md


def test_partial_sweep_lists_missing_incomplete_and_corrupt_jobs(sweeps, capsys):
    grid = sweeps / "grid"
    never = job_folder(grid, corpus="sotu", transfer="frozen", size_exponent=0.0, seed=2)
    shutil.rmtree(never)  # never started: only multirun.yaml knows it
    crashed = job_folder(grid, corpus="captions", transfer="init", size_exponent=0.0, seed=1)
    (crashed / RESULTS_FILE).unlink()
    (crashed / "job.json").write_text("{}")  # it had started: a crash mid-run
    failed = job_folder(grid, corpus="sotu", transfer="init", size_exponent=-1.0, seed=1)
    r = json.loads((failed / RESULTS_FILE).read_text())
    (failed / RESULTS_FILE).write_text(json.dumps({**r, "job/status": "failed"}))
    corrupt = job_folder(grid, corpus="captions", transfer="frozen", size_exponent=-1.0, seed=2)
    (corrupt / RESULTS_FILE).write_text('{"job/status": "compl')  # killed mid-write

    assert main([str(sweeps), "--out", str(sweeps / "out")]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipped {corrupt / RESULTS_FILE}: not valid JSON" in err
    md = (sweeps / "out" / "report.md").read_text()
    head = "**16 of 20 jobs complete** (19 job folders found, 1 more expected from multirun.yaml"
    assert f"{head}; 2 incomplete, " in md
    assert "1 never started, 1 unreadable)" in md
    expected = "+experiment=transfer corpus=sotu seed=2 size_exponent=0 transfer=frozen"
    assert f"- never started: `grid: {expected}`" in md
    assert f"- `grid/{crashed.name}`: no results.json" in md
    assert f"- `grid/{failed.name}`: status 'failed'" in md
    assert f"- unreadable, skipped: {corrupt / RESULTS_FILE}: not valid JSON" in md

    cells = summarize(scan(sweeps).table)  # the failed job is in the table, not averaged
    sotu = cells[(cells.corpus == "sotu") & (cells.transfer == "init")]
    assert sotu.set_index("size_exponent")["n"].to_dict() == {-1.0: 1, 0.0: 2}


def test_corrupt_results_are_named_in_a_warning_and_skipped(sweeps):
    bad = {
        "grid/0": ("[1, 2]", "not a JSON object but list"),
        "grid/1": ('{"job/corpus": "sotu"}', "missing keys job/status, job/transfer"),
        "grid/2": ("not json", "not valid JSON"),
    }
    for job, (text, _) in bad.items():
        (sweeps / job / RESULTS_FILE).write_text(text)
    with pytest.warns(UserWarning) as caught:
        df = collect(sweeps)
    assert len(df) == 17 and not set(bad) & set(df["job_dir"])
    messages = sorted(str(w.message) for w in caught)
    for (job, (_, why)), message in zip(sorted(bad.items()), messages, strict=True):
        assert message.startswith(f"skipped {sweeps / job / RESULTS_FILE}: {why}")


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err == f"caplm.report: {tmp_path / 'nowhere'}: no such directory\n"

    (tmp_path / "empty" / "0" / ".hydra").mkdir(parents=True)  # a job that never finished
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no readable results.json found; nothing to report" in err
    assert "Traceback" not in err
    assert main([str(tmp_path / "empty"), "--latest"]) == 2
    assert "no subdirectory holds a results.json" in capsys.readouterr().err


def test_latest_picks_the_sweep_with_the_newest_results(sweeps, capsys):
    for path in (sweeps / "grid").rglob(RESULTS_FILE):
        os.utime(path, (1e9, 1e9))  # grid finished long ago, controls just now
    (sweeps / "empty_new_sweep").mkdir()  # no results: never picked
    assert latest_sweep(sweeps) == sweeps / "controls"
    assert main([str(sweeps), "--latest"]) == 0
    md = (sweeps / "controls" / "report" / "report.md").read_text()
    assert "**4 of 4 jobs complete**" in md
    assert (
        f"## Plots\n\n{report_markdown.NO_PLOTS}\n" in md
    )  # controls only: nothing to plot against
    assert "- no transfer mode has LM perplexities" in md
    assert not (sweeps / "report").exists()
    assert "4 complete jobs (4 distinct results) from" in capsys.readouterr().out


def test_expected_jobs_unknown_for_a_sweep_without_a_fixed_grid(sweeps):
    sweep_file = sweeps / "grid" / "multirun.yaml"
    config = yaml.safe_load(sweep_file.read_text())
    config["hydra"]["overrides"]["task"].append("lr=interval(0.001,0.1)")
    sweep_file.write_text(yaml.safe_dump(config))
    found = scan(sweeps)
    assert found.expected is None and found.found == 20
    assert "could not derive the expected jobs of grid/multirun.yaml" in found.notes[0]


def test_expected_jobs_follow_hydra_sweep_syntax(tmp_path):
    jobs = [(["seed=1", "transfer=none"], fake_results("none", "none", None, 1, "controls"))]
    write_sweep(tmp_path / "s", "controls", {"seed": "range(1,4)"}, ["transfer=none"], jobs)
    found = scan(tmp_path / "s")
    assert found.expected == 3
    assert found.never_started == ["seed=2 transfer=none", "seed=3 transfer=none"]


def test_jobs_that_reused_an_identical_jobs_results_count_once(sweeps):
    # the paper grid repeats the no-transfer control per LM corpus; repeats reuse one result
    src = job_folder(sweeps / "controls", transfer="none", seed=1)
    for n in range(3):
        copy = sweeps / "controls" / f"repeat{n}"
        shutil.copytree(src, copy)
        r = json.loads((copy / RESULTS_FILE).read_text())
        r["job/reused_from"] = src.name
        (copy / RESULTS_FILE).write_text(json.dumps(r))
    df = collect(sweeps)
    assert len(df) == 23  # every job has its row in the table
    baseline = summarize(df).query("transfer == 'none'").iloc[0]
    assert baseline["n"] == 2  # but seeds 1 and 2 are counted once each
    assert main([str(sweeps), "--out", str(sweeps / "out")]) == 0
    text = (sweeps / "out" / "report.md").read_text()
    assert "**23 of " in text and "3 of them reused the result of an identical job" in text


def test_report_tabulates_lm_measures_and_flags_lms_stopped_at_their_cap(tmp_path):
    """An LM-only sweep (python -m caplm.lm): LM measures per cell, capped LMs called out."""
    from caplm.results import coverage_key

    jobs = []
    for e, capped in ((-1, True), (0, False)):
        for seed in (1, 2):
            r = {k: v for k, v in fake_results("captions", "init", e, seed).items()
                 if k.startswith(("job/", "lm/"))}  # fmt: skip
            r["job/transfer"] = "lm_only"
            r[coverage_key("lm", "captest", "oov_type_rate")] = 0.25
            r[coverage_key("lm", "captest", "oov_token_rate")] = 0.02
            r["lm/stopped_at_cap"] = capped and seed == 1
            jobs.append(([f"corpus.size_exponent={e}", f"seed={seed}"], r))
    write_sweep(tmp_path / "lm", "lm", {}, ["corpus.size_exponent=-1,0", "seed=1,2"], jobs)
    assert main([str(tmp_path / "lm")]) == 0
    md = (tmp_path / "lm" / "report" / "report.md").read_text()
    section = md.split("## Language models: the study's LM measures")[1].split("\n## ")[0]
    assert "transfer = lm_only" in section
    lines = [line for line in section.splitlines() if line.startswith("| -1 |")]
    assert len(lines) == 1
    # cell e=-1: captest pplx 46 x (1 +- 0.02); OOV type rate 0.25; at cap in 1 of 2 seeds
    cells = [c.strip() for c in lines[0].split("|")[1:-1]]
    assert cells[1] == "2" and cells[-1] == "0.500 ± 0.707" and "0.250 ± 0.000" in cells
    assert "**1 job(s)' LM stopped at its epoch cap" in section
    assert "caption generator stopped" not in section


def test_transfer_effects_are_paired_by_seed_with_bootstrap_intervals():
    from caplm.report.summary import transfer_effects

    rows = []
    for seed, none, frozen in ((1, 0.40, 0.50), (2, 0.42, 0.50), (3, 0.44, 0.56)):
        for transfer, cider, corpus, e in (("none", none, "none", None),
                                            ("frozen", frozen, "captions", 0)):  # fmt: skip
            r = fake_results(corpus, "init" if transfer == "frozen" else "none", e, seed)
            r.update({"job/transfer": transfer, CIDER: cider})
            rows.append(r)
    rows.append({**rows[-1], "job/seed": 4, CIDER: 0.9})  # no no-transfer job for seed 4
    table = pd.DataFrame([{k.removeprefix("job/"): v for k, v in r.items()} for r in rows])
    effects = transfer_effects(table)
    (row,) = effects.to_dict("records")
    assert row["transfer"] == "frozen" and row["n"] == 3  # seed 4 has no pair
    assert row["effect"] == pytest.approx((0.10 + 0.08 + 0.12) / 3)
    # the mean of 3 paired differences resampled lies between their min and max
    assert 0.08 - 1e-12 <= row["effect_lo"] < row["effect"] < row["effect_hi"] <= 0.12 + 1e-12
    assert transfer_effects(table[table["transfer"] != "none"]).empty


def test_the_rank_correlation_comes_with_a_bootstrap_interval():
    from caplm.report.summary import bootstrap_rho

    x = np.arange(8.0)
    assert bootstrap_rho(x, -x) == pytest.approx((-1.0, -1.0))  # every resample is monotone
    rng = np.random.default_rng(1)
    y = rng.normal(size=8)
    lo, hi = bootstrap_rho(x, y)
    rho = stats.spearmanr(x, y)[0]
    assert lo < rho < hi and hi - lo > 0.3  # 8 noisy points: a wide interval
    assert bootstrap_rho(x, y) == (lo, hi)  # seeded


def test_header_counts_the_jobs_of_several_multiruns_into_one_folder(tmp_path):
    """Each multirun into a folder rewrites its multirun.yaml: it knows the last one's jobs only
    (it said "3 of 1 jobs complete"). A job whose config was refused is named, not counted."""
    jobs = [(["transfer=none", f"seed={s}"], fake_results("none", "none", None, s, "controls"))
            for s in (1, 2, 3)]  # fmt: skip
    write_sweep(tmp_path / "s", "controls", {}, ["transfer=none", "seed=3"], jobs)
    (tmp_path / "s" / "3" / ".hydra").mkdir(parents=True)  # refused before it began
    assert main([str(tmp_path / "s"), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**3 of 3 jobs complete** (3 job folders found; 0 incomplete, 0 never started" in md
    assert "1 folder(s) of jobs that failed before they started (no job.json" in md
    assert "- failed before it started, not counted: `3`: no job.json" in md


def test_a_column_of_means_has_one_format(tmp_path):
    """The epochs column mixed "8.000" and "10.0": each column now has one number of decimals."""
    cells = pd.DataFrame({"transfer": ["init", "frozen", "none"], "n": [2, 2, 2],
                          "lm/epochs.mean": [8.0, 10.0, 9.5], "lm/epochs.std": [1.0, 0.0, None],
                          "lm/val.mean": [8.0, 10.0, 12.0], "lm/val.std": [None] * 3})  # fmt: skip
    epochs = report_markdown._mean_std_column(cells["lm/epochs.mean"], cells["lm/epochs.std"])
    assert epochs == ["8.000 ± 1.000", "10.000 ± 0.000", "9.500"]
    whole = report_markdown._mean_std_column(cells["lm/val.mean"], cells["lm/val.std"])
    assert whole == ["8", "10", "12"]
