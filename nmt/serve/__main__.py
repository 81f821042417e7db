"""``python -m nmt.serve``: the command lives in :mod:`nmt.cli.serve`."""

from nmt.cli.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
