"""An example third-party mhub plugin: the ``tinynet`` family, complete with every hook.

``plugin.py`` holds the hook implementations and imports nothing heavy; the other modules are named there
as ``"module:function"`` strings and imported only when used:

- ``model.py``: the architecture, built from ``mhub.layers`` and ``mhub.builders`` only;
- ``upstream.py``: the authors' own implementation, whose checkpoints the weights come in;
- ``convert.py``: the key map from that layout to ours;
- ``source.py``: the ``tiny://`` source scheme (files on a TinyHub server);
- ``commands.py``: the ``mhub example-prefixes`` command;
- ``tinynet.toml`` and ``references/``: the weight manifest and its reference outputs.
"""
