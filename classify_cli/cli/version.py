from __future__ import annotations

from ._util import app, print_version


@app.command("version")
def version_cli() -> None:
    """Print the version (as --version and -V do).

    \b
    Example:
      classify version
    """
    print_version()
