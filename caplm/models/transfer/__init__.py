"""Weight transfer from a language model into a caption generator.

- ``modes``: the transfer modes and what each does (pure Python: the report uses it too).
- ``vocab``: the generator's vocabulary under a vocabulary policy.
- ``callback``: copying and freezing the prefix, and the ``WeightTransfer`` Lightning callback.
- ``l2_sp``, ``aux_lm``, ``wise_ft``, ``ulmfit``: the methods beyond the study, and
  ``methods``: the callbacks a config's method adds to the fit.
"""
