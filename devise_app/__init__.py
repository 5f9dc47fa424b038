"""devise-app: search your own photos by meaning with a DeViSE model."""

__version__ = "0.1.0"

# Bumped whenever the layout of the files in models/ changes incompatibly.
MODEL_FORMAT_VERSION = 2
