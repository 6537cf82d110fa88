"""Weight transfer from a language model into a caption generator.

- ``modes``: the transfer modes and what each does (pure Python: the report uses it too).
- ``vocab``: the generator's vocabulary under a vocabulary policy.
- ``callback``: copying and freezing the prefix, and the ``WeightTransfer`` Lightning callback.
"""
