"""Icons and the style sheet (package data: ``devise_app.resources``)."""
