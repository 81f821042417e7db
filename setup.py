"""The one packaging fact pyproject.toml cannot state: conf/ ships in the wheel as the package
``nmt.conf`` (mapped in pyproject's package-dir), which package discovery cannot find because it
looks for ``nmt*`` directories only. Everything else about the build is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["nmt", "nmt.*"], exclude=["*.__pycache__"]), "nmt.conf"])
