"""Hydra's sweep syntax: the jobs a multirun's overrides ask for, as its basic sweeper
launches them (``a=1,2 b=x,y``: four jobs). The report counts the jobs a multirun.yaml asked
for with it; ``python -m caplm.plan`` lists the jobs a command will run."""

from __future__ import annotations

import itertools


def sweep_jobs(args: list[str]) -> list[list[str]]:
    """Each job's overrides, in the order Hydra's basic sweeper runs them: the product of
    every sweep (``key=a,b``, ``range(1,4)``, ...). An override of a key given again later
    (the command line after an experiment's ``hydra.sweeper.params``) replaces it. Raises
    ValueError for a sweep with no fixed list of jobs (an interval)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser  # slow import

    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(list(args)):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            raise ValueError(f"{key}: an interval sweep has no fixed list of jobs")
    return [list(job) for job in itertools.product(*choices.values())]
