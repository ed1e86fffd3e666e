"""The one exception hierarchy: every error mhub raises on purpose is an :class:`MhubError`.

The CLI prints ``str(error)`` as a single line, so messages name what was wrong and where.
"""


class MhubError(Exception):
    """Base class of every error mhub raises on purpose."""


class UnknownModelError(MhubError, KeyError):
    """A model or weight name that no plugin or manifest registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoWeightsError(MhubError):
    """The architecture exists but has no (such) pretrained weights."""


class ManifestError(MhubError, ValueError):
    """A weight manifest is malformed; the message names file, entry and field."""


class PluginError(MhubError):
    """A plugin failed to import or registered invalid or duplicate data."""


class IntegrityError(MhubError):
    """Downloaded or cached bytes do not match the expected sha256."""


class NetworkError(MhubError):
    """A source could not be reached or answered with an error."""


class OfflineError(NetworkError):
    """Offline mode is on and what was asked for is not in the cache."""


class NoSpaceError(MhubError):
    """The disk holding the cache filled up; nothing half-written was left under a final name."""


class ConversionError(MhubError):
    """A checkpoint could not be converted or loaded into an mhub model."""


class ConfigError(MhubError, ValueError):
    """A model configuration that does not exist or is missing; the message lists the valid ones."""


class FeatureError(MhubError, ValueError):
    """Feature extraction was asked of a model that declares no (such) feature points, or with bad levels."""


class ImageSizeError(MhubError, ValueError):
    """An input whose spatial size differs from the size a fixed-size model was built for."""
