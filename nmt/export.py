"""``python -m nmt.export``: the command lives in :mod:`nmt.cli.export`."""

from nmt.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
