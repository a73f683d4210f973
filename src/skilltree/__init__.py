"""skilltree: learning roadmaps for backend engineers, implemented by the service itself."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skilltree")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
