"""``python -m devise_app`` and the ``devise-app`` command."""

import sys


def main() -> int:
    """Load the program, then run the command line. A Ctrl+C while it loads ends it
    as quietly as one at any later moment."""
    from devise_app.engine.interrupts import interrupts_held

    try:
        with interrupts_held():
            from devise_app import cli
    except KeyboardInterrupt:
        print("devise-app: interrupted", file=sys.stderr)
        return 130
    return cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
