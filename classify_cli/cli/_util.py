"""The shared Typer app and the few helpers every command uses.

Nothing heavy is imported here: ``classify --help`` must stay fast, so commands import
numpy, torch and datasets inside their functions.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from ..util.display import listed, shown  # noqa: F401  (the commands' one way to print data)
from ..util.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ClassifyError

# Click's exceptions, from wherever this Typer keeps Click (its own copy, typer._click, since 0.2x)
_click_errors = sys.modules[typer.BadParameter.__module__]
# `classify` alone raises this (Click >= 8.2) to print the help: not an error to shorten
_SHOWS_HELP = getattr(_click_errors, "NoArgsIsHelpError", ())


# name -> (its module in this package, the first paragraph of its help): `classify --help` lists
# the commands from here and imports only the one that runs (tests/test_start.py checks they agree)
COMMANDS = {
    "compress": ("compress", "Write a small copy of a model, for deployment."),
    "config": ("config", "Print the config prepare and train would use, as TOML."),
    "evaluate": ("evaluate", "Measure a model on labeled data: accuracy, F1, drift."),
    "info": ("info", "Describe a trained model."),
    "predict": ("predict", "Label text: the most likely label(s), with probabilities."),
    "prepare": ("prepare", "Split and tokenize a labeled corpus for training."),
    "report": ("report", "Draw PNGs of a run, or of evaluate reports over time."),
    "train": ("train", "Train the classifier on prepared data."),
    "tune": ("tune", "Search for the best config within a time budget."),
    "version": ("version", "Print the version (as --version and -V do)."),
}


class LazyCommands(Mapping[str, Any]):
    """The subcommands by name, in ``COMMANDS`` order: a command's module is imported the first
    time Click asks for the command (to run it, show its help or complete it), not to list them."""

    def __init__(self, built: Mapping[str, Any]):
        self._built = dict(built)  # those whose modules were imported before the group was made

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        if name not in self._built:
            import importlib

            importlib.import_module(f"{__package__}.{COMMANDS[name][0]}")  # its @app.command registers it
            (info,) = (c for c in app.registered_commands if c.name == name)
            self._built[name] = typer.main.get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode
            )
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class OneLineErrors(TyperGroup):
    """The top-level command: Click's usage errors in any subcommand become one `error:` line.

    Click would print the usage, a hint and the message over four or more lines (Typer: in a
    boxed panel); scripts and cron mail want the one line every other failure gives.
    Its commands are ``LazyCommands``.
    """

    def __init__(self, *, commands: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(commands or {})  # type: ignore[assignment]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # Click's list, made from stand-ins that carry COMMANDS' help: the real commands would be imported
        stand_ins = [TyperCommand(name=name, help=text) for name, (_, text) in COMMANDS.items()]
        TyperGroup(commands=stand_ins).format_commands(ctx, formatter)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_errors(None):  # options of `classify` itself
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_errors(ctx):  # the command's name, then its own options and arguments
            return super().invoke(ctx)


@contextmanager
def _one_line_errors(group_ctx: Any) -> Iterator[None]:
    try:
        yield
    except _click_errors.ClickException as exc:
        if isinstance(exc, _SHOWS_HELP):
            raise
        # this Typer validates with pydantic, whose "Value error, " prefix says nothing to a user
        message = f"error: {exc.format_message().replace('Value error, ', '')}"
        if isinstance(exc, _click_errors.UsageError):
            message += f" (see {_command_path(exc.ctx, group_ctx)} --help)"
        err(message)
        raise typer.Exit(exc.exit_code) from None


def _command_path(ctx: Any, group_ctx: Any) -> str:
    """`classify evaluate` for an error in evaluate's options, even those Click raises without a context."""
    if ctx is not None:
        return ctx.command_path
    if group_ctx is not None:
        return " ".join(filter(None, [group_ctx.command_path, group_ctx.invoked_subcommand]))
    return "classify"


app = typer.Typer(
    name="classify",
    help="Train, evaluate and serve news-topic classifiers (EmbeddingBag + Linear).",
    cls=OneLineErrors,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help texts are shown as written: Rich markup would eat "[default: ...]" as a style tag.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def print_version() -> None:
    """`classify version`, `--version` and `-V`: one line on stdout."""
    from ..util.version import __version__

    print(f"classify {__version__}")


def _print_version(value: bool) -> None:
    if value:
        print_version()
        raise typer.Exit()


@app.callback()
def _top(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Train, evaluate and serve news-topic classifiers (EmbeddingBag + Linear)."""


Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
ModelDir = Annotated[Path, typer.Option("--model", help="Run directory holding the trained model.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help='Override a config key (repeatable): train.epochs=5, prepare.text_fields=["title","body"].',
    ),
]
DEFAULT_RUN = Path("runs/ag_news")
DEFAULT_DATA = Path("data/ag_news")
TextFields = Annotated[
    list[str] | None,
    typer.Option(
        "--text-field",
        metavar="NAME",
        help="Column holding the text; repeat to join several (title, body) [default: prepare.text_fields].",
        show_default=False,
    ),
]
LabelField = Annotated[
    str | None,
    typer.Option(
        "--label-field",
        metavar="NAME",
        help="Column holding the label [default: prepare.label_field].",
        show_default=False,
    ),
]


LabelSep = Annotated[
    str | None,
    typer.Option(
        "--label-sep",
        metavar="SEP",
        help='Several labels per text in one field, split at SEP (e.g. "|"; an empty field: none) '
        "[default: prepare.label_sep].",
        show_default=False,
    ),
]


def column_overrides(
    text_fields: list[str] | None, label_field: str | None, label_sep: str | None = None
) -> dict[str, Any]:
    """The PrepareConfig fields --text-field, --label-field and --label-sep set."""
    given = (("text_fields", text_fields or None), ("label_field", label_field), ("label_sep", label_sep))
    return {k: v for k, v in given if v is not None}


T = TypeVar("T")


def err(message: str) -> None:
    """One line on stderr, in one write: ranks sharing a pipe (torchrun) do not splice lines."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def plain_console():
    """A Rich console for tables of data: no markup (a label "[red]" is text) and no highlighting."""
    from rich.console import Console

    return Console(markup=False, highlight=False)


def stderr_width() -> int:
    """The terminal's columns for stderr's lines: $COLUMNS first (as shutil reads it), else
    stderr's own terminal (stdout may be a pipe), else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 80
    return max(columns, 20)


_SEPARATORS = re.compile(r"(; |, |  +)")


def fitted(message: str, width: int, indent: str = "  ") -> str:
    """A log line folded into lines of at most ``width`` columns, at its separators ("; ", ", ",
    two spaces) where it can, the later lines indented: the terminal would cut it anywhere."""
    parts = _SEPARATORS.split(message)
    lines, line = [], ""
    for text, sep in zip(parts[::2], [*parts[1::2], ""], strict=True):
        if line and len(line) + len(text) > width:
            lines.append(line.rstrip())
            line = indent
        line += text
        while len(line) > width:  # one piece longer than a line: cut it
            lines.append(line[:width])
            line = indent + line[width:]
        line += sep
    return "\n".join([*lines, line.rstrip()])


def color_ok(stream=sys.stderr) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class Bar:
    """A progress bar on stderr when stderr is a terminal (whatever stdout is), with a count,
    a rate and the time left when the total is known; nothing otherwise. While it shows,
    ``log`` prints above it, so log lines and the bar do not garble each other."""

    def __init__(self, unit: str, description: str = "", enabled: bool = True):
        self.unit, self.description, self.enabled = unit, description, enabled
        self._progress: Any = None

    def __enter__(self) -> Bar:
        if not (self.enabled and color_ok(sys.stderr)):
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Count(ProgressColumn):
            def render(self, task: Any) -> Text:
                done = f"{task.completed:,.0f}" + (f"/{task.total:,.0f}" if task.total is not None else "")
                unit = task.fields["unit"]
                return Text(f"{done} {unit}" + (f"  {task.speed:,.0f}/s" if task.speed else ""))

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            Count(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True, highlight=False, markup=False),
            transient=True,
            # results go to stdout untouched: a redirect would send them through the bar's console (stderr)
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=None, unit=self.unit)
        return self

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, completed: int, total: int | None, description: str, unit: str | None = None) -> None:
        """Set where it stands (train: each epoch's steps, starting over every epoch)."""
        if self._progress is not None:
            task = self._progress.tasks[0]
            if description != task.description:  # a new epoch: its rate and time left start afresh
                self._progress.reset(
                    self._task, total=total, description=description, completed=completed, unit=unit or self.unit
                )
            else:
                self._progress.update(self._task, completed=completed, total=total)

    def log(self, message: str) -> None:
        if sys.stderr.isatty():  # folded at separators, not wherever the terminal's edge falls
            message = fitted(message, stderr_width())
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            err(message)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def run(fn: Callable[..., T], *args: Any, debug: bool = False, **kwargs: Any) -> T:
    """Call the library function behind a command; expected failures become one line + exit code."""
    try:
        return fn(*args, **kwargs)
    except ClassifyError as exc:
        if debug:
            traceback.print_exc()
        err(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        err("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # the reader went away (`classify predict ... | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    except Exception as exc:  # a bug: say so in one line, the traceback only when asked
        if debug:
            traceback.print_exc()
        err(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        raise typer.Exit(EXIT_INTERNAL) from None


def parse_overrides(items: list[str] | None) -> dict[tuple[str, str], Any]:
    from ..util.config import parse_override

    out = {}
    for item in items or []:
        section, key, value = parse_override(item)
        out[(section, key)] = value
    return out


DEFAULT_CONFIG = Path("configs/agnews.toml")


def load_config_or_default(config: Path | None, overrides: dict):
    """The named config; else configs/agnews.toml when it exists here; else the built-in defaults."""
    from ..util.config import load_config

    if config is None and DEFAULT_CONFIG.is_file():
        config = DEFAULT_CONFIG
    return load_config(config, overrides)
