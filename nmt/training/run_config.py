"""The config of a resumed run, and the check that a checkpoint fits it.

``python -m nmt.train ckpt_path=RUN/checkpoints/last.ckpt`` alone resumes that run: its
config comes from the checkpoint. Whatever the command line changes (a key, or a preset that
changes keys) is applied on top; changes that do not fit the checkpoint's weights and
tokenizers (task, model sizes, attention, tokenizer, dataset, schedule) are refused with a
one-line error that lists every difference, before any data is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from nmt.config.checks import ConfigError
from nmt.config.schema import MOVED_KEYS, SCHEMAS, group_schema
from nmt.inference.checkpoint import CheckpointError, checkpoint_config, is_inference_only, load_checkpoint

# Dotted-key prefixes that must match the checkpoint (what the weights and tokenizers fix).
IDENTITY_PREFIXES = ("task", "model.", "attention.", "tokenizer.", "data.name", "data.labels", "optim.schedule")
# Under those prefixes, what may change on resume without touching the weights' meaning.
MUTABLE_KEYS = (
    "model.dropout",
    "model.encoder.freeze",
    "model.encoder.lr_scale",
    "model.encoder.init_from",
    "model.contextual.bilm",  # the weights come from the checkpoint; the file is not read again
    "model.contextual.lr_scale",
    "tokenizer.sampling_alpha",  # how the training pairs are segmented, not the vocabulary
    "tokenizer.sampling_nbest",
)
MUTABLE_PREFIXES = ("model.init.",)
# Keys that never come from the checkpoint: they describe this invocation.
LOCAL_KEYS = ("ckpt_path", "run_dir")


# Sections typed by a schema (nmt.config.schema.SCHEMAS). A key the checkpoint lacks there (one newer
# than the checkpoint) takes the schema's default for the checkpoint's task, not the value of
# today's default composition: that one's group choice (model=lstm) need not be the run's (a
# classifier's model section has no decoder keys).
TYPED_SECTIONS = tuple(f"{group}." for group in SCHEMAS)
# Untyped group sections and the key that names their choice: a key the checkpoint lacks there
# comes from today's composition only when that composed the checkpoint's choice (resuming an
# IMDB run must not get the default fra's three-way data.split).
GROUP_NAMES = {"data.": "data.name"}


def add_schema_defaults(flat: dict[str, Any], task: str | None) -> None:
    """Add to ``flat`` the schema defaults of the typed sections that it lacks (not inside a
    section it holds as a whole, e.g. a null ``model.contextual.bilm_model``, nor over one
    that it fills in where the schema's default is null)."""
    for group in SCHEMAS:
        defaults = flatten(OmegaConf.to_container(OmegaConf.structured(group_schema(group, task))), f"{group}.")
        for key, value in defaults.items():
            parents = {key.rsplit(".", depth)[0] for depth in range(1, key.count(".") + 1)}
            if key in flat or parents & flat.keys() or any(other.startswith(key + ".") for other in flat):
                continue
            flat[key] = value


class ResumeMismatch(ConfigError):
    """The checkpoint does not fit the configured run."""


def flatten(container: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are leaves."""
    if isinstance(container, Mapping):
        flat: dict[str, Any] = {}
        for key, value in container.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat if flat or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: container}


def is_identity_key(key: str) -> bool:
    if key in MUTABLE_KEYS or key.startswith(MUTABLE_PREFIXES):
        return False
    for prefix in IDENTITY_PREFIXES:
        if key.startswith(prefix) if prefix.endswith(".") else key == prefix or key.startswith(prefix + "."):
            return True
    return False


def differences(run: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    """``key=run value (checkpoint: saved value)`` for every identity key that differs."""
    run_flat, saved_flat = flatten(run), flatten(saved)
    found = []
    for key in sorted(set(run_flat) | set(saved_flat)):
        if not is_identity_key(key):
            continue
        mine, theirs = run_flat.get(key, "<absent>"), saved_flat.get(key, "<absent>")
        if mine != theirs and theirs != "<absent>":  # a key newer than the checkpoint is fine
            found.append(f"{key}={mine!r} (checkpoint: {theirs!r})")
    return found


def overridden_keys(overrides: list[str], conf_dir: Path | None = None) -> set[str]:
    """Dotted keys (or ``group.`` prefixes) set by command-line overrides.

    ``a.b=1``, ``+a.b=1``, ``~a.b`` give ``a.b``; a group choice ``model=gru`` gives
    ``model.``; ``experiment=X`` gives the keys and groups that ``conf/experiment/X.yaml``
    sets, so that naming a preset is asking for it even when it is the default one.
    A ``group.`` prefix is only checked against the checkpoint (an architecture key there
    that differs is an error); its other values still come from the checkpoint.
    """
    keys: set[str] = set()
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if "." in key or key in ("seed", "threads", "test_after_training", "name", "task"):
            keys.add(key)
        elif key == "experiment" and conf_dir is not None:
            keys |= preset_keys(Path(conf_dir) / "experiment" / f"{value}.yaml")
        elif key:
            keys.add(f"{key}.")
    return keys


def preset_keys(path: Path) -> set[str]:
    """The keys an experiment preset sets, and ``group.`` for the groups it picks."""
    if not path.is_file():
        return set()
    preset = cast(dict[str, Any], OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    keys = set()
    for entry in preset.pop("defaults", []) or []:
        if isinstance(entry, Mapping):
            for target in entry:
                keys.add(str(target).replace("override", "").strip().lstrip("/").split("@")[0] + ".")
    keys |= set(flatten(preset))
    return keys


def resumed_config(cfg: DictConfig, defaults: DictConfig, explicit: set[str] | None = None) -> DictConfig:
    """The run config when ``cfg.ckpt_path`` is set, else ``cfg`` unchanged.

    :param cfg: the config composed from the command line.
    :param defaults: the config composed with no command-line overrides: keys where ``cfg``
        differs from it are what the user asked for; the rest comes from the checkpoint.
    :param explicit: keys given on the command line (from :func:`overridden_keys`), asked
        for even where they equal the default (e.g. ``trainer.max_time=null``).
    :raises CheckpointError: a missing, damaged or foreign checkpoint.
    :raises ResumeMismatch: the command line asks for a run the checkpoint cannot continue.
    """
    path = cfg.get("ckpt_path")
    if not path:
        return cfg
    checkpoint = load_checkpoint(path)
    if is_inference_only(checkpoint):
        raise CheckpointError(
            f"cannot resume from {path}: it is an inference-only export (nmt/cli/export.py), without "
            "the optimiser and loop state that training needs; resume from the run's checkpoints/last.ckpt"
        )
    saved = moved_keys_renamed(checkpoint_config(checkpoint))
    mine = OmegaConf.to_container(cfg, resolve=True)
    base = OmegaConf.to_container(defaults, resolve=True)
    mine_flat, base_flat = flatten(mine), flatten(base)
    # A null where the checkpoint holds a section filled in by the run (model.contextual.bilm_model)
    # keeps the checkpoint's section.
    sections = {key.rsplit(".", depth)[0] for key in flatten(saved) for depth in range(1, key.count(".") + 1)}
    mine_flat = {key: value for key, value in mine_flat.items() if not (value is None and key in sections)}
    asked = {key for key, value in mine_flat.items() if base_flat.get(key, object()) != value}
    explicit = explicit or set()
    asked |= {key for key in mine_flat if any(key == e or key.startswith(e + ".") for e in explicit)}
    checked = asked | {key for key in mine_flat if any(key.startswith(e) for e in explicit if e.endswith("."))}
    merged = flatten(saved)
    foreign = TYPED_SECTIONS + tuple(
        prefix for prefix, name in GROUP_NAMES.items() if mine_flat.get(name) != merged.get(name)
    )
    for key, value in mine_flat.items():
        if key in asked or key in LOCAL_KEYS or (key not in merged and not key.startswith(foreign)):
            merged[key] = value
    add_schema_defaults(merged, merged.get("task"))
    mismatched = differences(unflatten({**merged, **{k: mine_flat[k] for k in checked}}), saved)
    if mismatched:
        raise ResumeMismatch(
            f"cannot resume from {path}: the run differs from the checkpoint in "
            + "; ".join(mismatched)
            + ". Resume with ckpt_path alone (the checkpoint's config is used) or drop these overrides"
        )
    resumed = OmegaConf.create(unflatten(merged))
    OmegaConf.set_struct(resumed, True)
    return resumed


def moved_keys_renamed(config: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with keys that moved groups under their new names (a run saved
    before ``trainer.max_cpu_time`` became ``training.max_cpu_time`` resumes)."""
    flat = flatten(config)
    return unflatten({MOVED_KEYS.get(key, key): value for key, value in flat.items()})


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def checkpoint_run_directory(ckpt_path: str | None) -> Path | None:
    """The run directory a checkpoint belongs to (``RUN/checkpoints/x.ckpt`` -> ``RUN``), when
    it looks like one of ours (it has ``config.yaml``); else None."""
    if not ckpt_path:
        return None
    path = Path(str(ckpt_path)).expanduser()
    run = path.parent.parent
    if path.parent.name == "checkpoints" and (run / "config.yaml").is_file():
        return run
    return None


def run_dir_resolver(ckpt_path: Any, fresh: str) -> str:
    """Hydra's ``hydra.run.dir``: a resumed run keeps writing into its own directory; a new
    run gets a directory of its own (:func:`claim_run_directory`)."""
    run = checkpoint_run_directory(ckpt_path)
    return str(run) if run is not None else claim_run_directory(fresh)


# fresh -> the directory this process claimed for it: OmegaConf may resolve hydra.run.dir
# more than once, and every answer must be the same.
_claimed_run_directories: dict[str, str] = {}


def claim_run_directory(fresh: str) -> str:
    """``fresh`` (``outputs/NAME/TIMESTAMP``), created now, or ``fresh-2``, ``fresh-3``, ... when
    another run took it: two runs started in the same second (two seeds launched side by side)
    would otherwise write their checkpoints and logs into one directory. Creating the directory
    is the atomic test, so two processes cannot both win one name."""
    if fresh not in _claimed_run_directories:
        candidate, number = Path(fresh), 1
        while True:
            try:
                candidate.mkdir(parents=True)
                break
            except FileExistsError:
                number += 1
                candidate = Path(f"{fresh}-{number}")
        _claimed_run_directories[fresh] = str(candidate)
    return _claimed_run_directories[fresh]
