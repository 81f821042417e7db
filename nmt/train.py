"""``python -m nmt.train``: the command lives in :mod:`nmt.cli.train`."""

from nmt.cli.train import main

if __name__ == "__main__":
    main()
