"""The shipped model files (package data: ``devise_app.models``); see MODEL_CARD.md."""
