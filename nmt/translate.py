"""``python -m nmt.translate``: the command lives in :mod:`nmt.cli.translate`."""

from nmt.cli.translate import main

if __name__ == "__main__":
    raise SystemExit(main())
