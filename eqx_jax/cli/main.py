"""The ``eqx`` command: the core's subcommands, plus those that outer layers register.

The core (``simulate``, ``solve``, ``train``, ``evaluate``, ``export``, ``import``) knows nothing
of the layers above it. ``serve`` (``eqx serve``, ``eqx user``) and ``baselines``
(``eqx bench``) add their subcommands through the ``eqx.commands`` entry-point group: each entry
point is a ``register(subparsers)`` function that adds its parsers, with ``func`` set to the
handler. A handler raises :class:`~eqx_jax.cli.common.CliError` for a one-line error (status
2) or ``SystemExit`` with its own status.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from eqx_jax.cli import games, training
from eqx_jax.cli.common import CliError
from eqx_jax.compile_cache import disable_compile_cache, enable_compile_cache

#: The entry-point group through which outer layers add subcommands.
COMMANDS_GROUP = "eqx.commands"


def add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Every subcommand registered in :data:`COMMANDS_GROUP`, in entry-point name order."""
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(sub)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``eqx`` parser: the core's subcommands, then the registered ones."""
    parser = argparse.ArgumentParser(
        prog="eqx", description="EquilibriumX: vectorized bargaining games in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    games.add_parsers(sub)
    training.add_parsers(sub)
    add_plugin_commands(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--no-compile-cache", dest="compile_cache", action="store_false",
            help="do not use JAX's persistent compilation cache (default: on, in "
                 "$EQX_COMPILE_CACHE_DIR or ~/.cache/eqx/jax; EQX_COMPILE_CACHE=0 also "
                 "turns it off)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``eqx`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "compile_cache", True):
        enable_compile_cache()
    else:
        disable_compile_cache()
    try:
        args.func(args)
    except CliError as e:
        print(f"eqx {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0
