"""Models: the prefix encoder that transfers (``prefix``), the language model
(``language_model``), the merge caption generator (``caption_generator``), the batched beam
search it generates with (``beam_search``), and the weight transfer from an LM into a
generator (``transfer``). Import from the submodules; this package imports nothing itself,
so a light module (e.g. ``caplm.models.transfer.modes``) can be used without torch.
"""
