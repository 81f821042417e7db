"""Where the Hydra configs are: inside the installed package, or beside it in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """The directory holding ``config.yaml``: ``nmt/conf`` in an installed wheel (the
    checkout's ``conf/``, shipped as package data), else ``conf/`` at the checkout's top."""
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no Hydra configs (config.yaml) in {_PACKAGE / 'conf'} or {_PACKAGE.parent / 'conf'}")


CONF_DIR = config_dir()
