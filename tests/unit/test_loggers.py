"""The ``logger`` group: TensorBoard and CSV by default, CSV alone, W&B and MLflow when installed."""

from __future__ import annotations

import importlib.util

import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import OmegaConf

from conftest import compose_config
from nmt.config.checks import ConfigError, validate_config
from nmt.training.loggers import build_loggers


def loggers_of(overrides: list[str], run_dir) -> list[type]:
    cfg = OmegaConf.to_container(validate_config(compose_config(overrides)), resolve=True)
    return [type(logger) for logger in build_loggers(cfg["logger"], run_dir, cfg["name"])]


def test_the_default_run_logs_to_tensorboard_and_csv_as_before(tmp_path):
    assert compose_config().logger.name == "tensorboard"
    assert loggers_of([], tmp_path) == [TensorBoardLogger, CSVLogger]


def test_logger_csv_writes_only_the_csv_file(tmp_path):
    assert loggers_of(["logger=csv"], tmp_path) == [CSVLogger]


@pytest.mark.parametrize("package", ["wandb", "mlflow"])
def test_an_optional_logger_without_its_package_is_a_one_line_error_naming_pip_install(package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    with pytest.raises(ConfigError, match=f"pip install {package}") as error:
        validate_config(compose_config([f"logger={package}"]))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("package", ["wandb", "mlflow"])
def test_an_optional_logger_validates_when_its_package_is_installed(monkeypatch, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == package else real(name, *a))
    typed = validate_config(compose_config([f"logger={package}"]))
    assert typed.logger.name == package and typed.logger.csv is True


def test_a_config_saved_before_the_logger_group_gets_its_defaults():
    cfg = compose_config()
    OmegaConf.set_struct(cfg, False)
    del cfg["logger"]
    assert validate_config(cfg).logger.name == "tensorboard"


def test_an_unknown_logger_name_is_refused():
    with pytest.raises(ConfigError, match="logger.name='neptune' is not supported"):
        validate_config(compose_config(["logger.name=neptune"]))
