"""Weight transfer from a language model into a caption generator.

- ``modes``: the ``TransferMode`` base class and its registry, the parts and the vocabulary
  policies (pure Python: the report uses it too).
- ``methods/``: one module per mode or method (``none``, ``init``, ``frozen``,
  ``random_frozen``, ``l2_sp``, ``aux_lm``, ``wise_ft``, ``ulmfit``), each one ``TransferMode``.
- ``vocab``: the generator's vocabulary under a vocabulary policy.
- ``callback``: copying and freezing the prefix, and the ``WeightTransfer`` Lightning callback.
"""
