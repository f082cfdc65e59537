"""The library version: one place, read by the package, the manifest writer and the build."""

__version__ = "0.2.0"
