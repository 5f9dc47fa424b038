"""The engine: the Qt-free core that indexes, stores and searches photos.

Everything the CLI and the GUI do goes through ``search.Library``.
"""
