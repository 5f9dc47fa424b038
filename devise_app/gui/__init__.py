"""The Qt face of devise-app: main window, list models, delegate, workers, dialogs.

Everything Qt lives in this package; the core (``devise_app.engine.search`` and friends)
knows nothing about it. Long jobs (indexing, searching, thumbnails) run off the
GUI thread through :mod:`devise_app.gui.workers`.
"""
