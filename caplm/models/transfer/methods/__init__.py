"""The transfer modes and methods, one :class:`~caplm.models.transfer.modes.TransferMode`
subclass per module, named as the mode (``transfer.mode``) and its ``conf/transfer/<mode>.yaml``.
The registry (:mod:`caplm.models.transfer.modes`) finds them; nothing imports them by name.
"""
