"""The JSON files classify reads back (``model.json``, ``manifest.json``), checked whole.

Each file is described by a schema built from the small types below: every key's type and
range, the names a field may take, and no key the schema does not name. Each file also
carries ``json_sha256``, the SHA-256 of its other fields as canonical JSON, so an edit by
hand or a corrupt copy is refused instead of half-used. (A checksum keeps out accidents, not
an attacker who recomputes it: what indexes a tensor is range-checked on load as well.)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError, ClassifyError
from .fs import read_regular

CHECKSUM = "json_sha256"


class Invalid(ValueError):
    """A value that does not fit its schema; the message names its path (``head.ngrams``)."""


def json_sha256(document: dict[str, Any]) -> str:
    """The checksum of a document's fields other than the checksum itself."""
    rest = {k: v for k, v in document.items() if k != CHECKSUM}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def sealed(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with its checksum added, ready to write."""
    return {**document, CHECKSUM: json_sha256(document)}


def check_sealed(document: Any, schema: Obj) -> None:
    """Raise ``Invalid`` unless ``document`` fits ``schema`` and its checksum matches."""
    schema.check(document, "")
    if document[CHECKSUM] != json_sha256(document):
        raise Invalid("checksum mismatch: the file was edited or is corrupt")


def read_document(file: Path, fmt: str, version: int, schema: Obj, names: tuple[str, str], redo: str) -> dict:
    """A JSON file classify wrote, read and checked whole: its format, version, schema and
    checksum. ``names``: what the file is and what its contents are ("model file", "model
    description"), for the messages; ``redo``: how to make a new one. A missing file raises
    ``FileNotFoundError``, for the caller to say what that means."""
    kind, contents = names
    try:
        document = json.loads(read_regular(file).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise BundleError(f"{file}: not valid JSON (corrupt or truncated)") from None
    if not isinstance(document, dict) or document.get("format") != fmt:
        raise BundleError(f"{file}: not a classify {kind}")
    if document.get("version") != version:
        raise BundleError(
            f"{file}: {kind} format version {document.get('version')!r} is not supported (expected {version}); {redo}"
        )
    try:
        check_sealed(document, schema)
    except Invalid as exc:
        raise BundleError(f"{file}: invalid {contents} ({exc}); {redo}") from None
    return document


def _at(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


class Spec:
    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


@dataclass
class Int(Spec):
    lo: int = 0
    hi: int = 2**63 - 1

    def check(self, value: Any, path: str) -> None:
        if type(value) is not int or not self.lo <= value <= self.hi:
            raise Invalid(f"{path}: expected an integer in [{self.lo}, {self.hi}], got {value!r:.40}")


@dataclass
class Float(Spec):
    lo: float = -math.inf
    hi: float = math.inf

    def check(self, value: Any, path: str) -> None:
        if type(value) not in (int, float) or not math.isfinite(value) or not self.lo <= value <= self.hi:
            raise Invalid(f"{path}: expected a number in [{self.lo}, {self.hi}], got {value!r:.40}")


@dataclass
class Str(Spec):
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    max_len: int = 4096

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise Invalid(f"{path}: expected a string (at most {self.max_len} characters), got {value!r:.40}")
        if self.choices and value not in self.choices:
            raise Invalid(f"{path}: expected one of {', '.join(self.choices)}, got {value!r:.40}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise Invalid(f"{path}: malformed value {value!r:.40}")


class Bool(Spec):
    def check(self, value: Any, path: str) -> None:
        if type(value) is not bool:
            raise Invalid(f"{path}: expected true or false, got {value!r:.40}")


@dataclass
class Maybe(Spec):
    """``spec`` or null."""

    spec: Spec

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            self.spec.check(value, path)


@dataclass
class Either(Spec):
    options: tuple[Spec, ...]

    def check(self, value: Any, path: str) -> None:
        errors = []
        for option in self.options:
            try:
                return option.check(value, path)
            except Invalid as exc:
                errors.append(str(exc).partition(": ")[2])
        raise Invalid(f"{path}: {' or '.join(errors)}")


@dataclass
class List(Spec):
    item: Spec
    min_len: int = 0
    max_len: int = 2**31
    unique: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            raise Invalid(f"{path}: expected a list of {self.min_len} to {self.max_len} items, got {value!r:.40}")
        for i, item in enumerate(value):
            self.item.check(item, _at(path, i))
        if self.unique and len(set(map(json.dumps, value))) != len(value):
            raise Invalid(f"{path}: duplicate entries")


@dataclass
class Map(Spec):
    """An object whose keys are data (label names, file names), each value one ``value`` spec."""

    value: Spec
    key: Str = field(default_factory=Str)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(f"{path}: expected an object, got {value!r:.40}")
        for key, item in value.items():
            self.key.check(key, _at(path, "<key>"))
            self.value.check(item, _at(path, key))


@dataclass
class Obj(Spec):
    """An object with these keys (``optional`` may be absent) and no others."""

    required: dict[str, Spec]
    optional: dict[str, Spec] = field(default_factory=dict)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(f"{path or 'file'}: expected an object, got {value!r:.40}")
        for key in value:
            if key not in self.required and key not in self.optional:
                raise Invalid(f"{_at(path, key)}: unknown key")
        for key, spec in self.required.items():
            if key not in value:
                raise Invalid(f"{_at(path, key)}: missing")
            spec.check(value[key], _at(path, key))
        for key, spec in self.optional.items():
            if key in value:
                spec.check(value[key], _at(path, key))


@dataclass
class Checked(Spec):
    """A value another module validates: ``fn`` raises ``ValueError`` or ``ClassifyError``."""

    fn: Any

    def check(self, value: Any, path: str) -> None:
        try:
            self.fn(value)
        except (ValueError, ClassifyError) as exc:
            raise Invalid(f"{path}: {str(exc).removeprefix('config: ')}") from None


SHA256 = Str(pattern="[0-9a-f]{64}", max_len=64)
TIMESTAMP = Str(pattern=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", max_len=20)
LABEL = Str(max_len=1024)
FRACTION = Float(0.0, 1.0)
COUNT = Int()
LABELS = List(LABEL, min_len=2, max_len=1_000_000, unique=True)
