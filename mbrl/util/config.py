"""Typed dataclass configs: defaults, then a YAML preset, then dotted command-line overrides.

>>> cfg = load_config(PETSConfig, "pets_cartpole", ["planner.horizon=20", "seed=3"])
>>> save_config(cfg, run_dir / "config.yaml")

Precedence (later wins): the dataclass defaults, the preset's values, the overrides in order.
Values are type-checked and coerced against the dataclass field types (``int``, ``float``,
``bool``, ``str``, ``Path``, ``Optional[...]``/``X | None``, ``Literal[...]``, ``tuple[...]``,
``list[...]``, ``dict[str, ...]`` and nested dataclasses). A misspelt key raises
:class:`ConfigError` listing the valid keys at that level.

Override values are parsed with ``yaml.safe_load``: ``seed=3`` is an int, ``lr=3e-4`` a float,
``use_tb=false`` a bool, ``hidden=[200,200]`` a list, ``device=cpu`` a string, ``x=null`` None.
A string given for a nested config that has a ``name`` field sets that field: ``planner=icem``
is short for ``planner.name=icem``.

A nested config type may declare *variants*: a classmethod ``config_variants() -> {name: cls}``
(e.g. :class:`mbrl.planning.PlannerConfig` maps ``"cem"`` to ``CEMConfig``). The value of its
``name`` key then selects the concrete class, with that class's defaults, and only that class's
keys are accepted. When an override switches the variant (``planner=mppi`` on a preset written
for CEM), the preset's keys the new variant does not have are dropped with a
:class:`ConfigWarning` naming them; keys given as overrides are always checked strictly.
A ``float``/``int`` field also accepts numeric strings such as ``1e-3`` (YAML 1.1 reads that as
a string), and a ``str`` field accepts numbers (``name=123`` gives ``"123"``).

Presets are YAML files in the package folder ``mbrl/configs/``; :func:`preset_path` resolves a
bare name like ``"pets_cartpole"`` to ``mbrl/configs/pets_cartpole.yaml``, or accepts a path.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from mbrl.util.io import atomic_write

__all__ = [
    "CONFIG_DIR",
    "MAX_PRESET_ALIASES",
    "MAX_PRESET_BYTES",
    "ConfigError",
    "ConfigWarning",
    "config_from_dict",
    "config_to_dict",
    "default_of",
    "require_ints",
    "list_presets",
    "load_yaml",
    "load_config",
    "parse_overrides",
    "preset_path",
    "task_preset",
    "save_config",
]

T = TypeVar("T")

CONFIG_DIR: Path = Path(__file__).resolve().parent.parent / "configs"
"""Folder holding the packaged YAML presets (``mbrl/configs``)."""

_MISSING = dataclasses.MISSING


MAX_PRESET_BYTES = 1 << 20
"""Largest preset file :func:`load_yaml` reads (1 MiB)."""

MAX_PRESET_ALIASES = 20
"""Most YAML alias references (``*name``) a preset may use. With at most 20 aliases no nesting
of them expands to more than about 1,600 copies, which bounds "billion laughs" files."""


class ConfigError(ValueError):
    """A config key is unknown, a value has the wrong type, or a preset/override is malformed."""


class ConfigWarning(UserWarning):
    """A preset key was dropped because an override switched to a variant without that key."""


def default_of(fn: Callable[..., Any], name: str) -> Any:
    """The default value of parameter ``name`` of ``fn`` (a function or a class).

    Config dataclasses use it so that each default is stated once, in the signature of the
    class the config builds: ``population: int = default_of(CEMPlanner, "population")``.
    """
    try:
        param = inspect.signature(fn).parameters[name]
    except KeyError:
        raise TypeError(f"name: {fn.__qualname__} has no parameter {name!r}") from None
    if param.default is inspect.Parameter.empty:
        raise TypeError(f"name: parameter {name!r} of {fn.__qualname__} has no default")
    return param.default


def require_ints(obj: Any, minimum: Mapping[str, int], optional: Sequence[str] = ()) -> None:
    """Raise ``ValueError`` naming the first field ``name`` of ``obj`` that is not an ``int``
    (bools rejected) of at least ``minimum[name]``; the fields in ``optional`` may be ``None``."""
    for name, low in minimum.items():
        value = getattr(obj, name)
        if value is None and name in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            none = " or None" if name in optional else ""
            raise ValueError(f"{name}: expected an int >= {low}{none}, got {value!r}")


class _BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses more than :data:`MAX_PRESET_ALIASES` alias references."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_PRESET_ALIASES:
                raise ConfigError(
                    f"preset uses more than {MAX_PRESET_ALIASES} YAML aliases; refusing to "
                    "expand it (a config never needs that many)"
                )
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` of a file, bounded: at most :data:`MAX_PRESET_BYTES` bytes and
    :data:`MAX_PRESET_ALIASES` alias references. Raises :class:`ConfigError` naming the file."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_PRESET_BYTES:
        raise ConfigError(
            f"preset {str(path)!r}: {size} bytes, larger than the {MAX_PRESET_BYTES}-byte limit"
        )
    try:
        loader = _BoundedSafeLoader(path.read_text())
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset {str(path)!r} is not valid YAML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"preset {str(path)!r}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------


def list_presets() -> list[str]:
    """Sorted names of the packaged presets (``mbrl/configs/*.yaml`` without the suffix)."""
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def task_preset(algorithm: str, task: str) -> str | None:
    """Name of the packaged preset ``<algorithm>_<task>`` (dashes as underscores), if any."""
    name = f"{algorithm}_{task.replace('-', '_')}"
    return name if name in list_presets() else None


def preset_path(name: str | Path) -> Path:
    """Resolve a preset: a bare name (``"pets_cartpole"``) maps to ``mbrl/configs/<name>.yaml``.

    A :class:`~pathlib.Path`, or a string containing a path separator or ending in
    ``.yaml``/``.yml``, is taken as a file path. Raises :class:`FileNotFoundError` naming the
    available presets when nothing is found.
    """
    if not isinstance(name, str | Path):
        raise TypeError(f"preset: expected a preset name or path, got {type(name).__name__}")
    text = str(name)
    looks_like_path = (
        isinstance(name, Path) or "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))
    )
    if looks_like_path:
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"preset: no such file {str(path)!r}")
        return path
    path = CONFIG_DIR / f"{text}.yaml"
    if not path.is_file():
        available = ", ".join(list_presets()) or "(none)"
        raise FileNotFoundError(
            f"preset: unknown preset {text!r} (looked for {str(path)!r}); "
            f"available presets: {available}"
        )
    return path


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_config(cls: type[T], preset: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build a ``cls`` config from its defaults, a YAML preset, then dotted overrides.

    Args:
        cls: a dataclass type (fields may be nested dataclasses).
        preset: preset name or YAML path (see :func:`preset_path`), or ``None`` for defaults.
        overrides: strings ``"key=value"`` or ``"outer.inner=value"``; later ones win.

    Returns:
        A validated instance of ``cls``.

    Raises:
        ConfigError: unknown key (the message lists the valid keys), wrong value type, or a
            malformed preset/override.
    """
    _require_dataclass_type(cls, "cls")
    if isinstance(overrides, str):
        raise TypeError("overrides: expected a sequence of 'key=value' strings, got one string")
    data: dict[str, Any] = {}
    preset_data: Mapping[str, Any] = {}
    if preset is not None:
        path = preset_path(preset)
        loaded = load_yaml(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(
                f"preset {str(path)!r}: expected a mapping at top level, "
                f"got {type(loaded).__name__}"
            )
        _check_keys(cls, loaded, prefix="", source=f"preset {str(path)!r}")
        _deep_update(data, loaded)
        preset_data = loaded
    override_keys: set[str] = set()
    for key, value in parse_overrides(overrides):
        sub_cls = _check_override_path(cls, key)
        if (
            sub_cls is not None
            and isinstance(value, str)
            and "name" in {f.name for f in dataclasses.fields(sub_cls)}
        ):
            key = f"{key}.name"  # `planner=cem` is short for `planner.name=cem`
        _set_dotted(data, key.split("."), value)
        override_keys.add(key)
    _drop_switched_variant_keys(cls, data, preset_data, override_keys)
    return config_from_dict(cls, data)


def _drop_switched_variant_keys(
    cls: type, data: dict[str, Any], preset: Mapping[str, Any], override_keys: set[str]
) -> None:
    """Drop preset keys of variant fields whose variant an override switched (with a warning)."""
    hints = _field_types(cls)
    defaults = _default_instance(cls)
    for f in dataclasses.fields(cls):
        sub = data.get(f.name)
        base_cls = _dataclass_in(hints[f.name])
        if base_cls is None or not isinstance(sub, dict) or not _has_variants(base_cls):
            continue
        given = preset.get(f.name) if isinstance(preset.get(f.name), Mapping) else {}
        default_name = getattr(getattr(defaults, f.name, None), "name", None)
        preset_name = given.get("name", default_name)
        if f"{f.name}.name" not in override_keys or sub.get("name") == preset_name:
            continue
        variant = _variant_class(base_cls, sub, None, f.name)
        valid = {g.name for g in dataclasses.fields(variant) if g.init}
        dropped = [k for k in given if k not in valid and f"{f.name}.{k}" not in override_keys]
        for k in dropped:
            del sub[k]
        if dropped:
            warnings.warn(
                f"{f.name}: {sub['name']!r} does not read the preset's "
                f"{', '.join(f'{f.name}.{k}' for k in dropped)} (set for {preset_name!r}); "
                "dropped",
                ConfigWarning,
                stacklevel=3,
            )


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    """Parse ``["a.b=1", "c=[1, 2]"]`` into ``[("a.b", 1), ("c", [1, 2])]`` (YAML values)."""
    parsed = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r}: expected 'key=value' (e.g. 'seed=3')")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r}: empty key or key part")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
        parsed.append((key, value))
    return parsed


def config_from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build and validate a ``cls`` instance from a (possibly partial, nested) mapping.

    Fields missing from ``data`` take the dataclass defaults; nested dataclass fields may be
    given as partial mappings.
    """
    _require_dataclass_type(cls, "cls")
    return _build(cls, data, prefix="", base=None)


def _build(cls: type, data: Mapping[str, Any], prefix: str, base: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{prefix or 'config'}: expected a mapping for {cls.__name__}, "
            f"got {type(data).__name__}"
        )
    if _has_variants(cls):
        cls = _variant_class(cls, data, base, prefix.rstrip(".") or cls.__name__)
        if base is not None and type(base) is not cls:
            base = None
    hints = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    _check_keys(cls, data, prefix, source="config", base=base)
    if base is None:
        base = _default_instance(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        tp = hints[name]
        if name in data:
            value = data[name]
            sub_cls = _dataclass_in(tp)
            if sub_cls is not None and isinstance(value, Mapping):
                sub_base = getattr(base, name, None) if base is not None else None
                if not isinstance(sub_base, sub_cls):
                    sub_base = None
                kwargs[name] = _build(sub_cls, value, prefix=f"{key}.", base=sub_base)
            else:
                kwargs[name] = _coerce(value, tp, key)
        elif base is not None:
            kwargs[name] = getattr(base, name)
        elif f.default is not _MISSING:
            kwargs[name] = f.default
        elif f.default_factory is not _MISSING:
            kwargs[name] = f.default_factory()
        else:
            raise ConfigError(f"config key {key!r} is required (it has no default)")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        where = prefix.rstrip(".") or cls.__name__
        raise ConfigError(f"{where}: invalid config: {exc}") from exc


def _has_variants(cls: type) -> bool:
    return callable(getattr(cls, "config_variants", None))


def _variant_class(cls: type, data: Mapping[str, Any], base: Any, where: str) -> type:
    """The concrete variant of ``cls`` that ``data['name']`` (else ``base``'s type) selects."""
    variants: dict[str, type] = cls.config_variants()  # type: ignore[attr-defined]
    if "name" not in data:
        if base is not None and type(base) in variants.values():
            return type(base)
        if cls in variants.values():
            return cls
        raise ConfigError(f"{where}.name: required, one of {', '.join(variants)}")
    name = data["name"]
    if name not in variants:
        raise ConfigError(
            f"config key '{where}.name': expected one of {', '.join(variants)}, got {name!r}"
        )
    return variants[name]


def _default_instance(cls: type) -> Any:
    """``cls()`` if every field has a default, else ``None``."""
    try:
        return cls()
    except TypeError:
        return None


# --------------------------------------------------------------------------------------------
# Key checking
# --------------------------------------------------------------------------------------------


def _valid_keys_message(cls: type, prefix: str) -> str:
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    level = f"{prefix.rstrip('.')} ({cls.__name__})" if prefix else "top level"
    return f"valid keys at {level}: {', '.join(names)}"


def _unknown_key_error(cls: type, key: str, prefix: str, source: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{source}: unknown config key {prefix + key!r}{hint}; {_valid_keys_message(cls, prefix)}"
    )


def _check_keys(
    cls: type, data: Mapping[str, Any], prefix: str, source: str, base: Any = None
) -> None:
    """Recursively reject keys of ``data`` that are not fields of ``cls`` (``base``: the
    instance whose values ``data`` overrides, used to pick a variant when ``data`` names none)."""
    if base is None:
        base = _default_instance(cls)
    if _has_variants(cls):
        cls = _variant_class(cls, data, base, prefix.rstrip(".") or "config")
        if type(base) is not cls:
            base = _default_instance(cls)
    hints = _field_types(cls)
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: config keys must be strings, got {key!r}")
        if key not in valid:
            raise _unknown_key_error(cls, key, prefix, source)
        sub_cls = _dataclass_in(hints[key])
        if sub_cls is not None and isinstance(value, Mapping):
            sub_base = getattr(base, key, None)
            _check_keys(sub_cls, value, f"{prefix}{key}.", source, sub_base)


def _check_override_path(cls: type, dotted: str) -> type | None:
    """Reject an override key that does not name a field (nested dataclasses are followed).

    Returns the dataclass type the key names when it names a nested config, else ``None``.
    """
    parts = dotted.split(".")
    current: type | None = cls
    for i, part in enumerate(parts):
        prefix = "".join(p + "." for p in parts[:i])
        assert current is not None
        if _has_variants(current):
            # The variant is known only once every override is in; accept a key of any
            # variant here, and let the final build check it against the selected one.
            owners = [
                v
                for v in current.config_variants().values()  # type: ignore[attr-defined]
                if part in {f.name for f in dataclasses.fields(v) if f.init}
            ]
            if not owners:
                return None  # reported by the build, against the selected variant's keys
            current = owners[0]
        valid = {f.name for f in dataclasses.fields(current) if f.init}
        if part not in valid:
            raise _unknown_key_error(current, part, prefix, source=f"override {dotted!r}")
        tp = _field_types(current)[part]
        if i == len(parts) - 1:
            return _dataclass_in(tp)
        sub_cls = _dataclass_in(tp)
        if sub_cls is None:
            if _is_mapping_type(tp):
                return None  # free-form dict field: any sub-key is allowed
            raise ConfigError(
                f"override {dotted!r}: {prefix + part!r} is not a nested config, "
                f"so it has no key {parts[i + 1]!r}"
            )
        current = sub_cls


def _deep_update(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        elif isinstance(value, Mapping):
            dst[key] = {}
            _deep_update(dst[key], value)
        else:
            dst[key] = value


def _set_dotted(dst: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if not isinstance(dst.get(part), dict):
            dst[part] = {}
        dst = dst[part]
    dst[parts[-1]] = value


# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------


def _require_dataclass_type(cls: Any, name: str) -> None:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{name}: expected a dataclass type, got {cls!r}")


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of the dataclass fields of ``cls``."""
    if cls not in _HINT_CACHE:
        try:
            hints = typing.get_type_hints(cls)
        except Exception as exc:  # unresolvable forward references
            raise TypeError(
                f"cannot resolve the field types of {cls.__name__}: {exc}; "
                "define config dataclasses at module level"
            ) from exc
        _HINT_CACHE[cls] = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}
    return _HINT_CACHE[cls]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass type of ``tp`` or of ``Optional[tp]``, else ``None``."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if _is_union(tp):
        found = [
            a for a in typing.get_args(tp) if isinstance(a, type) and dataclasses.is_dataclass(a)
        ]
        if len(found) == 1:
            return found[0]
    return None


def _is_mapping_type(tp: Any) -> bool:
    if _is_union(tp):
        return any(_is_mapping_type(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type ``tp`` and convert where unambiguous."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if _is_union(tp):
        if value is None:
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")

    if origin is Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return allowed
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"config key {key!r}: expected one of {choices}, got {value!r}")

    if value is None:
        raise ConfigError(f"config key {key!r}: expected {_type_name(tp)}, got None")

    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected a bool (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected an int, got bool {value!r}")
        if isinstance(value, int):
            return value
        number = _as_number(value)
        if number is not None and float(number).is_integer():
            return int(number)
        raise ConfigError(f"config key {key!r}: expected an int, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected a float, got bool {value!r}")
        number = _as_number(value)
        if number is not None:
            return float(number)
        raise ConfigError(f"config key {key!r}: expected a float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        if isinstance(value, str | Path):
            return Path(value)
        raise ConfigError(f"config key {key!r}: expected a path string, got {value!r}")

    sub_cls = _dataclass_in(tp)
    if sub_cls is not None:
        if isinstance(value, sub_cls):
            return value
        if isinstance(value, Mapping):
            return _build(sub_cls, value, prefix=f"{key}.", base=None)
        raise ConfigError(f"config key {key!r}: expected a mapping for {sub_cls.__name__}")

    if origin in (tuple, list) or (
        isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
    ):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(
                    f"config key {key!r}: expected {len(args)} items, got {len(value)}"
                )
            pairs = enumerate(zip(value, args, strict=True))
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in pairs)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if tp in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        return tp(value)

    if _is_mapping_type(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        key_tp, val_tp = args if len(args) == 2 else (Any, Any)
        return {
            _coerce(k, key_tp, f"{key}.{k}"): _coerce(v, val_tp, f"{key}.{k}")
            for k, v in value.items()
        }

    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(
            f"config key {key!r}: expected {tp.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def config_to_dict(cfg: Any) -> Any:
    """Plain YAML-safe data of a config: dataclasses become dicts, tuples lists, paths strings.

    Accepts a dataclass instance, a mapping, or any nesting of lists/tuples/scalars.
    """
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    if cfg is None or isinstance(cfg, bool | int | float | str):
        return cfg
    # numpy scalars and the like
    item = getattr(cfg, "item", None)
    if callable(item):
        return config_to_dict(item())
    raise TypeError(f"config value {cfg!r} of type {type(cfg).__name__} cannot be saved as YAML")


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write ``config_to_dict(cfg)`` as YAML to ``path`` atomically; return the path.

    The file loads back with ``load_config(type(cfg), path)``.
    """
    path = Path(path)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path
