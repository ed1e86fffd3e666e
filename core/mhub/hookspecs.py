"""The hooks a plugin may implement. Each hands data to a ``register`` callback; the host validates it.

Plugin modules are imported by ``mhub list``, so they must import without torch: builders, converters,
source fetchers and reference implementations are named lazily as ``"module:attribute"`` strings (callables
are accepted too). docs/plugins.md describes each hook in full.
"""

import pluggy

hookspec = pluggy.HookspecMarker("mhub")
hookimpl = pluggy.HookimplMarker("mhub")


@hookspec
def register_models(register):
    """Register architectures: ``register(name, builder, *, family, defaults=None, paper=None, ...)``."""


@hookspec
def register_weights(register):
    """Register weight manifests: ``register(path)`` for each TOML file holding ``[[weights]]`` entries."""


@hookspec
def register_converters(register):
    """Register state-dict key maps: ``register(name, function, *, version=1)``."""


@hookspec
def register_sources(register):
    """Register URL schemes: ``register(scheme, fetcher)``, see :class:`mhub.hub.Source`."""


@hookspec
def register_reference_models(register):
    """Register upstream models for ``--reference LIBRARY:NAME``: ``register(library, "module:function")``."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``mhub`` command group ``cli``."""
