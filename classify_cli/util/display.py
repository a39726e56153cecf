"""Text from data, shown on a terminal: control characters escaped, and predict's table."""

from __future__ import annotations

import shutil
from collections.abc import Iterable


def shown(value: object) -> str:
    """Text that came from data (labels, tokens, file names), safe to print to a terminal:
    control characters (ESC, BEL, ...) escaped as ``\\x1b``, so a label cannot recolor, retitle
    or clear the user's terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def listed(items: Iterable[object], most: int = 5) -> str:
    """Names from data for a message, escaped, at most ``most`` of them: 10,000 labels make a few
    words rather than an 80 KB line ("a, b, c, d, e, … (9,995 more)")."""
    items = list(items)
    more = f", … ({len(items) - most:,} more)" if len(items) > most else ""
    return ", ".join(shown(item) for item in items[:most]) + more


def byte_sizes(*sizes: int) -> list[str]:
    """Sizes in bytes, all in one unit (B, kB, MB, GB: powers of 1000, as --max-size reads them)
    and with the same precision, so that they compare at a glance: the largest one's unit, or a
    smaller one where the smallest size would read as less than 0.1 of it."""
    units = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)]
    top, least = max(sizes, default=0), min(sizes, default=0)
    fitting = [(unit, scale) for unit, scale in units if top >= scale]
    for unit, scale in fitting:
        if least >= 0.1 * scale or (unit, scale) == fitting[-1]:
            return [f"{n / scale:.2f} {unit}" for n in sizes]
    return [f"{n} B" for n in sizes]


def parse_size(text: str) -> int:
    """Bytes from ``2000000``, ``500K``, ``2M``, ``1.5MB`` or ``1GiB`` (K, M, G: powers of 1000,
    as fastText's ``-autotune-modelsize``; KiB, MiB, GiB: of 1024)."""
    import re

    from .errors import InputError

    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmg]?)(i?)(b?)\s*", text, re.IGNORECASE)
    if not match or (match[3] and not match[2]):
        raise InputError(f"--max-size {text!r}: give bytes, or a size such as 500K, 2M or 1.5MB")
    base = 1024 if match[3] else 1000
    return int(float(match[1]) * base ** " kmg".index(match[2].lower() or " "))


NUMBER_WIDTH = 13


class FixedTable:
    """Records as rows of a table with fixed column widths: batches formatted apart (in worker
    processes) line up as one table, and a long file prints as it goes. With explain, each
    text's features follow it, their contributions to the logit in a column of their own.
    Plain text, no Rich layout: a million rows take seconds, not minutes."""

    def __init__(self, labels: list[str], explain: bool):
        from rich.cells import cell_len

        self.explain = explain
        self.numbers = ["probability"] + (["contribution"] if explain else [])
        self.label_width = max(cell_len(shown(label)) for label in labels) + len("(: abstained)")
        spare = shutil.get_terminal_size().columns - self.label_width - (NUMBER_WIDTH + 3) * len(self.numbers) - 3
        self.text_width = max(20, min(60, spare))

    def _line(self, text: str, label: str, *numbers: str) -> str:
        from rich.cells import cell_len, set_cell_size

        if cell_len(text) > self.text_width:  # wide characters (CJK) count twice
            text = set_cell_size(text, self.text_width - 3) + "..."
        cells = [set_cell_size(text, self.text_width), set_cell_size(label, self.label_width)]
        return "   ".join([*cells, *(n.rjust(NUMBER_WIDTH) for n in numbers)]).rstrip() + "\n"

    def header(self) -> str:
        line = self._line("text", "label", *self.numbers)
        return line + "─" * (len(line) - 1) + "\n"

    def rows(self, records: list[dict]) -> str:
        lines = []
        blank = [""] if self.explain else []
        for r in records:
            if "labels" in r:
                lines += self._set_rows(r, blank)
                continue
            for i, t in enumerate(r["top"]):
                label = shown(t["label"]) if i or r["label"] is not None else f"({shown(t['label'])}: abstained)"
                text = (f"[{shown(r['id'])}] " if "id" in r else "") + shown(r["text"])
                lines.append(self._line(text if i == 0 else "", label, f"{t['probability']:.4f}", *blank))
            for e in r.get("explain", []):
                lines.append(self._line(f"  + {shown(e['feature'])}", "", "", f"{e['contribution']:+.4f}"))
        return "".join(lines)

    def _set_rows(self, r: dict, blank: list[str]) -> list[str]:
        """A text of a set of labels: each label it gets, then the rest of its top k in
        parentheses (below the threshold), each label's explanation under it."""
        got = list(zip(r["labels"], r["probabilities"], strict=True))
        rest = [(t["label"], t["probability"]) for t in r["top"] if t["label"] not in r["labels"]]
        text = (f"[{shown(r['id'])}] " if "id" in r else "") + shown(r["text"])
        lines = []
        for i, (label, p) in enumerate(got + rest[: max(0, len(r["top"]) - len(got))]):
            name = shown(label) if i < len(got) else f"({shown(label)})"
            if "abstained" in r:
                name = f"({shown(label)}: abstained)"
            lines.append(self._line(text if i == 0 else "", name, f"{p:.4f}", *blank))
            for e in r.get("explain", {}).get(label, []):
                lines.append(self._line(f"  + {shown(e['feature'])}", "", "", f"{e['contribution']:+.4f}"))
        return lines
