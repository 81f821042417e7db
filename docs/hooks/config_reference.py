"""The configuration reference page, generated from the config schema when the site is built.

``nmt/config/schema.py`` is the one source of the config's defaults and allowed values; this
mkdocs hook (registered under ``hooks:`` in mkdocs.yml) walks its dataclasses and enums and the
files of ``conf/``, and adds ``reference/configuration.md`` to the site. The page is never
written by hand and never committed: a key added to the schema appears at the next build.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs build` from a checkout that is not installed
    sys.path.insert(0, str(ROOT))

from nmt.config import schema  # noqa: E402

PAGE = "reference/configuration.md"
CONF_DIR = ROOT / "conf"

_COMMENT = re.compile(r"^\s*(\w+)\s*[:=][^#]*#\s*(.*)$")
_TYPE_IGNORE = re.compile(r"type:\s*ignore(\[[^\]]*\])?\s*(#\s*)?")


class Section(NamedTuple):
    """One table of the page: the keys under ``prefix`` typed by ``schema``."""

    title: str
    prefix: str
    schema: type


class Row(NamedTuple):
    key: str  # the full dotted path a user writes: model.init.scheme
    type: str
    default: str
    choices: str
    comment: str


def sections() -> list[Section]:
    """Every schema the run and embeddings configs are typed by, in the page's order."""
    found = [Section(f"`model` (task={task})", "model", cls) for task, cls in schema.MODEL_SCHEMAS.items()]
    found += [Section(f"`{group}`", group, cls) for group, cls in schema.SCHEMAS.items() if group != "model"]
    found += [Section(f"`data` (data={corpus})", "data", cls) for corpus, cls in schema.DATA_SCHEMAS.items()]
    found += [Section(f"`{name}`", name, cls) for name, cls in schema.SECTION_SCHEMAS.items()]
    found += [
        Section(f"`method` (python -m nmt.embeddings method={name})", "method", cls)
        for name, cls in schema.EMBEDDING_METHODS.items()
    ]
    return found


def _comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field or member in ``cls``'s source and its bases'."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ != cls.__module__:
            continue
        for line in inspect.getsource(klass).splitlines():
            match = _COMMENT.match(line)
            if match:
                text = _TYPE_IGNORE.sub("", match.group(2)).strip()
                if text:
                    found[match.group(1)] = text
    return found


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if origin in (typing.Union, types.UnionType):
        inner = " or ".join(_type_name(arg) for arg in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(hint)) else inner
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in typing.get_args(hint))}]"
    if hint is Any:
        return "any"
    return getattr(hint, "__name__", str(hint))


def _enum_of(hint: Any) -> type[Enum] | None:
    for candidate in (hint, *typing.get_args(hint)):
        if inspect.isclass(candidate) and issubclass(candidate, Enum):
            return candidate
    return None


def _dataclass_of(hint: Any) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if inspect.isclass(candidate) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _value(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if value == "" or value != value.strip() else value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return str(value)


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def _choices(enum: type[Enum]) -> str:
    comments = _comments(enum)
    parts = []
    for member in enum:
        note = comments.get(member.name)
        parts.append(f"`{member.value}`" + (f" ({note})" if note else ""))
    return ", ".join(parts)


def rows(cls: type, prefix: str) -> list[Row]:
    """One row per leaf field of ``cls`` (nested dataclasses walked), keys under ``prefix``."""
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    found: list[Row] = []
    for spec in dataclasses.fields(cls):
        key = f"{prefix}.{spec.name}"
        hint = hints[spec.name]
        nested = _dataclass_of(hint)
        if nested is not None:
            found += rows(nested, key)
            continue
        enum = _enum_of(hint)
        found.append(
            Row(
                key=key,
                type=_type_name(hint),
                default=_value(_default(spec)),
                choices=_choices(enum) if enum else "",
                comment=comments.get(spec.name, ""),
            )
        )
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    doc = inspect.getdoc(section.schema)
    if doc and doc != inspect.getdoc(dataclasses.dataclass):
        lines += [doc.replace("``", "`"), ""]
    lines += [f"Schema: `{section.schema.__name__}`.", ""]
    lines += ["| key | type | default | allowed values | note |", "|---|---|---|---|---|"]
    for row in rows(section.schema, section.prefix):
        default = f"`{_cell(row.default)}`"
        lines.append(f"| `{row.key}` | {_cell(row.type)} | {default} | {_cell(row.choices)} | {_cell(row.comment)} |")
    return lines + [""]


def _header_lines(path: Path) -> list[str]:
    """The leading ``#`` comment of a YAML file, line by line (``# @package`` lines skipped)."""
    text = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            text.append(line[1:].removeprefix(" ").rstrip())
    return text


def _header_comment(path: Path) -> str:
    """The leading ``#`` comment of a YAML file, as one line."""
    return " ".join(part.strip() for part in _header_lines(path) if part.strip())


def conf_groups(conf_dir: Path = CONF_DIR) -> dict[str, list[Path]]:
    """Each config group of ``conf_dir`` (a folder) and its option files, sorted."""
    return {
        group.name: sorted(group.glob("*.yaml"))
        for group in sorted(path for path in conf_dir.iterdir() if path.is_dir())
    }


def _root_keys(path: Path) -> list[tuple[str, str, str]]:
    """The top-level scalar keys of a root config file: (key, value, comment)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(\w+):\s*([^#\s][^#]*?)?\s*(?:#\s*(.*))?$", line)
        if match and match.group(2) is not None:
            found.append((match.group(1), match.group(2), match.group(3) or ""))
    return found


def _conf_section(conf_dir: Path) -> list[str]:
    lines = [
        "## Config files (`conf/`)",
        "",
        "The root files and the groups, each option a file: `GROUP=OPTION` on the command line picks",
        "`conf/GROUP/OPTION.yaml`. The installed wheel ships the same files as `nmt/conf`.",
        "",
    ]
    for root in sorted(conf_dir.glob("*.yaml")):
        lines += [f"### `{root.name}`", "", "```text", *_header_lines(root), "```", ""]
        keys = _root_keys(root)
        if keys:
            lines += ["| key | value | note |", "|---|---|---|"]
            lines += [f"| `{key}` | `{_cell(value)}` | {_cell(note)} |" for key, value, note in keys]
            lines.append("")
    for group, files in conf_groups(conf_dir).items():
        lines += [f"### `{group}`", "", "| option | what it is |", "|---|---|"]
        lines += [f"| `{group}={path.stem}` | {_cell(_header_comment(path))} |" for path in files]
        lines.append("")
    return lines


def render_reference(conf_dir: Path = CONF_DIR) -> str:
    """The whole page, as Markdown."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated at build time by docs/hooks/config_reference.py from nmt/config/schema.py"
        " and conf/; do not edit. -->",
        "",
        "Every key the config schema (`nmt/config/schema.py`) types, with its type, default and allowed",
        "values, then every file of `conf/`. Any key can be set on the command line",
        "(`python -m nmt.train model.hidden_size=512`); a key or value outside the schema is refused",
        "before any data is read. Keys not listed here (`trainer.*`, `hydra.*`) are Lightning's and",
        "Hydra's own.",
        "",
    ]
    for section in sections():
        lines += _table(section)
    lines += _conf_section(conf_dir)
    return "\n".join(lines).rstrip() + "\n"


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated page to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render_reference()))
    return files
