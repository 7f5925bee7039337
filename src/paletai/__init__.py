"""PaletAI: AI game-creation backend and its migration kit."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("paletai")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
