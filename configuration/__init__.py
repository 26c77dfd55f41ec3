"""Settings sections: how every package declares the settings it uses.

A section is a frozen dataclass whose fields are declared with :func:`setting`: the environment
variable, the default and the meaning, in one place. :func:`from_env` parses a section from the
environment with one syntax per type (booleans ``1/true/yes/on`` and ``0/false/no/off``, lists
comma-separated, paths, numbers with bounds) and one error, :class:`SettingsError`, naming the
variable; a section's ``validate`` checks what spans fields. :func:`reference` renders every
declared variable for ``docs/configuration.md``, so the documentation cannot drift from the code.

Owns: declaring, parsing and documenting settings. Must not know: any particular package's settings.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, cast

from errors import UserError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class SettingsError(UserError):
    """A setting is missing, malformed or inconsistent: the gateway refuses to start rather than
    run half-configured or insecurely."""

    code = "invalid_settings"


class Section(Protocol):
    """What every settings section is: a dataclass with declared fields and a ``title``."""

    title: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


S = TypeVar("S")


def setting(
    default: Any = dataclasses.MISSING,
    *,
    env: str,
    help: str,
    secret: bool = False,
    minimum: float | None = None,
    choices: tuple[str, ...] = (),
    prefix: bool = False,
    default_text: str | None = None,
) -> Any:
    """A field of a section. ``env`` is the variable (or, with ``prefix``, the start of a family of
    variables such as ``VOSK_MODEL_<LANG>``, parsed into a tuple of ``(suffix, value)`` pairs);
    ``default_text`` says in words what an unset value does, for the reference."""
    metadata = {
        "env": env,
        "help": help,
        "secret": secret,
        "minimum": minimum,
        "choices": choices,
        "prefix": prefix,
        "default_text": default_text,
    }
    if isinstance(default, list | dict | set):
        raise TypeError("settings are immutable: use a tuple")
    return dataclasses.field(default=default, metadata=metadata)


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {raw!r}", variable=name)


def parse_list(raw: str | None) -> tuple[str, ...]:
    """A comma-separated variable as a tuple of its non-empty items."""
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def _unoptional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


_PLACEHOLDER = re.compile(r"change[-_ ]?me|changeit|placeholder|secret|password|xxx+|todo", re.IGNORECASE)
"""Values of the example files and the usual stand-ins for "fill this in"."""


def _convert(name: str, raw: str, annotation: Any, meta: Mapping[str, Any]) -> Any:
    kind, optional = _unoptional(annotation)
    if optional and raw.strip() == "":
        return None
    try:
        if kind is bool:
            value: Any = parse_bool(name, raw)
        elif kind is int:
            value = int(raw.strip())
        elif kind is float:
            value = float(raw.strip())
        elif kind is Path:
            value = Path(raw.strip())
        elif typing.get_origin(kind) is tuple:
            value = parse_list(raw)
        else:
            value = raw.strip()
    except ValueError as exc:
        if isinstance(exc, SettingsError):
            raise
        wanted = {int: "an integer", float: "a number", Path: "a path"}.get(kind, "text")
        raise SettingsError(f"{name} must be {wanted}, not {raw!r}", variable=name) from exc
    if meta.get("minimum") is not None and isinstance(value, int | float) and value < meta["minimum"]:
        raise SettingsError(f"{name} must be at least {meta['minimum']:g}, not {raw!r}", variable=name)
    if meta.get("choices") and value not in meta["choices"]:
        raise SettingsError(f"{name} must be one of {', '.join(meta['choices'])}, not {raw!r}", variable=name)
    if meta.get("secret") and isinstance(value, str) and _PLACEHOLDER.fullmatch(value.strip()):
        # The example files' placeholder left in place: a secret everyone who read them knows.
        raise SettingsError(f"{name} is still the placeholder {value!r}: set a real secret", variable=name)
    return value


def from_env(cls: type[S], env: Mapping[str, str]) -> S:
    """The section ``cls`` from ``env``: unset variables keep their defaults; then ``validate()``."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cast(Any, cls)):
        meta = field.metadata
        if "env" not in meta:
            continue
        name = meta["env"]
        if meta["prefix"]:
            found = sorted(
                (k.removeprefix(name).lower(), v.strip()) for k, v in env.items() if k.startswith(name) and v
            )
            if found:
                kind = typing.get_args(typing.get_args(hints[field.name])[0])[1]
                values[field.name] = tuple((k, Path(v) if kind is Path else v) for k, v in found)
            continue
        if name in env:
            values[field.name] = _convert(name, env[name], hints[field.name], meta)
    section = cls(**values)
    validate = getattr(section, "validate", None)
    if callable(validate):
        validate()
    return section


def variables(cls: type[Any]) -> Iterable[tuple[str, dataclasses.Field[Any]]]:
    for field in dataclasses.fields(cls):
        if "env" in field.metadata:
            yield str(field.metadata["env"]), field


def _default_text(field: dataclasses.Field[Any]) -> str:
    meta = field.metadata
    if meta.get("default_text"):
        return str(meta["default_text"])
    if meta.get("secret"):
        return "unset"
    default = field.default
    if default is dataclasses.MISSING or default is None or default == ():
        return "unset"
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, tuple):
        return ",".join(str(d) for d in default)
    if isinstance(default, Path):
        return "(see meaning)"
    return str(default)


def reference(sections: Iterable[type[Any]], render: Callable[[str], str] = lambda s: s) -> str:
    """Markdown: one table per section, every variable with its default and meaning."""
    out: list[str] = []
    for cls in sections:
        rows = list(variables(cls))
        if not rows:
            continue
        out += [f"## {cls.title}", "", (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "), ""]
        out += ["| variable | default | meaning |", "|---|---|---|"]
        for name, field in rows:
            shown = f"`{name}<NAME>`" if field.metadata["prefix"] else f"`{name}`"
            meaning = render(str(field.metadata["help"])).replace("|", "\\|").replace("\n", " ")
            out.append(f"| {shown} | `{_default_text(field)}` | {meaning} |")
        out.append("")
    return "\n".join(out)


__all__ = ["Section", "SettingsError", "from_env", "parse_bool", "parse_list", "reference", "setting", "variables"]
