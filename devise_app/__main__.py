"""``python -m devise_app``: the same as the ``devise-app`` command."""

from devise_app.cli import main

raise SystemExit(main())
