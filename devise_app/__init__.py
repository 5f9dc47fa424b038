"""devise-app: search your own photos by meaning with a DeViSE model."""

__version__ = "0.1.0"
