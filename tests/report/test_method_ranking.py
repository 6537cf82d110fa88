"""The report's ranking of transfer modes by CIDEr gain over no transfer."""

import pandas as pd

from caplm.report.summary import method_ranking
from caplm.results import COMPLETE, metric_key


def _jobs(gains: dict[str, float], seeds=(1, 2, 3), corpora=("a", "b")) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        rows.append({"status": COMPLETE, "data": "shapes", "transfer": "none", "corpus": "none",
                     "seed": seed, metric_key("CIDEr"): 1.0 + 0.1 * seed})  # fmt: skip
        for mode, gain in gains.items():
            for i, corpus in enumerate(corpora):  # cells of one mode, pooled by the ranking
                rows.append({"status": COMPLETE, "data": "shapes", "transfer": mode,
                             "corpus": corpus, "size_exponent": 1.0, "seed": seed,
                             metric_key("CIDEr"): 1.0 + 0.1 * seed + gain + 0.01 * i})  # fmt: skip
    return pd.DataFrame(rows)


def test_modes_are_ranked_by_pooled_gain_with_intervals():
    ranking = method_ranking(_jobs({"init": 0.05, "l2_sp": 0.2, "frozen": -0.1}))
    assert list(ranking["transfer"]) == ["l2_sp", "init", "frozen"]
    assert list(ranking["rank"]) == [1, 2, 3]
    assert ranking["effect"].round(6).tolist() == [0.205, 0.055, -0.095]
    assert (ranking["n"] == 3).all()
    assert (ranking["effect_lo"] <= ranking["effect"]).all()
    assert (ranking["effect"] <= ranking["effect_hi"]).all()


def test_without_a_baseline_the_ranking_is_empty():
    df = _jobs({"init": 0.05})
    assert method_ranking(df[df["transfer"] != "none"]).empty
