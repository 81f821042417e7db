"""``python -m nmt.classify``: the command lives in :mod:`nmt.cli.classify`."""

from nmt.cli.classify import main

if __name__ == "__main__":
    raise SystemExit(main())
