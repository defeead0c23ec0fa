"""Command-line flags and a commented TOML file, generated from the typed config dataclasses.

Every field of a config dataclass becomes a flag named by its dotted path
(``--training.lr 3e-3``, ``--model.n_layer 4``, ``--two_hop.cot``); its help is
the one-line comment above the field in the source (configs are written as in
litgpt: a comment above each field). A field added to a config therefore gets
its flag, its help and its place in ``transcend config`` without touching the CLI.

Hand-written on argparse, not tyro or jsonargparse, because the ``transcend``
command is already an argparse tree (``run``/``reproduce``/``chess`` ...) with
short flags that must keep working (``--experts``, ``--steps``), explicit flags
override a ``--config`` file field by field (only flags typed on the command line
are applied: every generated flag defaults to ``argparse.SUPPRESS``), mode
defaults come from ``RunConfig.__post_init__``, and bad values must exit with
status 2 and one sentence (``TranscendError``). The generation is ~100 lines over
``dataclasses.fields`` and ``typing.get_type_hints``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from functools import lru_cache
from typing import Any, Callable, Iterator

import tomli_w

NONE_WORDS = ("none", "unset")


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config field: its dotted path, type, default and one-line doc."""
    path: str
    type: Any
    default: Any
    doc: str


@lru_cache(maxsize=None)
def field_docs(cls: type, inherit: bool = True) -> dict[str, str]:
    """The comment lines directly above each field of dataclass ``cls`` (a field listed right after another
    with no comment of its own shares that field's comment, as in ``n_layer``/``n_embd``/``n_head``)."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    comment: list[str] = []
    previous: str | None = None  # the field on the line just above, if any
    for line in lines[1:]:
        s = line.strip()
        m = re.match(r"    (\w+)\s*:", line)
        if s.startswith("#"):
            comment.append(s.lstrip("#").strip())
            continue
        if m and m.group(1) in names:
            docs[m.group(1)] = " ".join(comment) if comment else (docs.get(previous, "") if inherit else "")
            previous = m.group(1)
        else:
            previous = None
        comment = []
    return docs


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the type without ``| None``, whether None is allowed)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), len(args) < len(typing.get_args(tp))
    return tp, False


def is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(_unwrap(tp)[0])


def config_fields(cls: type, prefix: str = "", instance: Any = None) -> Iterator[FieldInfo]:
    """Every leaf field of dataclass ``cls`` (sections recursed into), with defaults read from ``instance``."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        value = getattr(instance, f.name) if instance is not None else _default(f)
        if is_section(tp):
            sub = _unwrap(tp)[0]
            yield from config_fields(sub, f"{prefix}{f.name}.", value if value is not None else sub())
        else:
            yield FieldInfo(prefix + f.name, tp, value, docs.get(f.name, ""))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


# --- parsing flag values --------------------------------------------------------------------------------------

def _scalar(tp: Any) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            if tp is int:
                return int(text)
            if tp is float:
                return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if tp is int else 'a number'}, got {text!r}") from None
        return text
    return parse


def value_parser(tp: Any) -> tuple[Callable[[str], Any], str]:
    """A function from the flag's text to the field's value, and the metavar shown in help."""
    base, optional = _unwrap(tp)
    origin = typing.get_origin(base)
    if origin in (list, tuple):
        item = next((a for a in typing.get_args(base) if a is not Ellipsis), str)
        one = _scalar(item)

        def parse_list(text: str) -> Any:
            if optional and text.lower() in NONE_WORDS:
                return None
            return [one(x.strip()) for x in text.split(",") if x.strip()]
        return parse_list, "X,Y,..."
    one = _scalar(base)
    metavar = {int: "N", float: "X"}.get(base, "TEXT")

    def parse(text: str) -> Any:
        if optional and text.lower() in NONE_WORDS:
            return None
        return one(text)
    return parse, metavar


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    return str(value)


def add_config_flags(parser: argparse.ArgumentParser, cls: type, instance: Any = None, *,
                     aliases: dict[str, list[str]] | None = None, skip: Callable[[FieldInfo], bool] | None = None,
                     title: str = "run") -> list[str]:
    """Add one flag per leaf field of ``cls`` to ``parser`` (grouped by section; ``title`` names the group of
    the top-level fields); returns their dests.

    ``aliases`` maps a dotted path to extra option strings (the short flags, ``--steps``);
    ``skip`` leaves fields out. Every flag defaults to ``argparse.SUPPRESS``: only flags given on the
    command line appear in the parsed namespace, so they override a config file field by field."""
    aliases = aliases or {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    dests = []
    for info in config_fields(cls, instance=instance):
        if skip is not None and skip(info):
            continue
        section = info.path.rsplit(".", 1)[0] if "." in info.path else ""
        if section not in groups:
            groups[section] = parser.add_argument_group(f"[{section}]" if section else title, None)
        names = [*aliases.get(info.path, []), f"--{info.path}"]
        names = list(dict.fromkeys(names))
        help_text = (info.doc or info.path).replace("%", "%%") + f" (default: {_shown(info.default)})"
        base, _ = _unwrap(info.type)
        if base is bool:
            groups[section].add_argument(*names, dest=info.path, action=argparse.BooleanOptionalAction,
                                         default=argparse.SUPPRESS, help=help_text)
        else:
            parse, metavar = value_parser(info.type)
            groups[section].add_argument(*names, dest=info.path, type=parse, metavar=metavar,
                                         default=argparse.SUPPRESS, help=help_text)
        dests.append(info.path)
    return dests


def given_flags(args: argparse.Namespace, dests: list[str]) -> dict[str, Any]:
    """The generated flags given on the command line: dotted path -> value."""
    ns = vars(args)
    return {d: ns[d] for d in dests if d in ns}


# --- a commented TOML file --------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"x": value}).split("=", 1)[1].strip()


def commented_toml(cfg: Any) -> str:
    """``cfg`` (a config dataclass instance) as TOML, each field preceded by its doc comment; unset optional
    fields are written as comments, so the file lists every field and loads back to the same config."""
    lines: list[str] = []

    def emit(obj: Any, cls: type, section: str) -> None:
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        subs = []
        for f in dataclasses.fields(cls):
            if is_section(hints[f.name]):
                subs.append(f)
                continue
            value = getattr(obj, f.name)
            for line in _wrap(docs.get(f.name, "")):
                lines.append(f"# {line}")
            if value is None:
                lines.append(f"# {f.name} = ...  (unset)")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
        for f in subs:
            value = getattr(obj, f.name)
            if value is None:
                continue
            name = f"{section}.{f.name}" if section else f.name
            lines.append("")
            doc = field_docs(cls, inherit=False).get(f.name)
            if doc:
                lines.append(f"# {doc}")
            lines.append(f"[{name}]")
            emit(value, _unwrap(hints[f.name])[0], name)

    emit(cfg, type(cfg), "")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 100) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + ([line] if line else [])
