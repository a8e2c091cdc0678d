"""Command-line wrapper shared by `python -m model.train` and `python -m model.generate`."""

from __future__ import annotations

import sys
from typing import Callable


def run_cli(main: Callable[[], int]) -> int:
    """Run `main`, turning configuration and data errors into one `error:` line and exit status 2."""
    from model.config import ConfigError
    from model.data import ShardError

    try:
        return main()
    except (ConfigError, ShardError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
