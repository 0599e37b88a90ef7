"""The ``eqx`` command (see :mod:`eqx_jax.cli.main`); shared pieces in :mod:`eqx_jax.cli.common`.

Subcommands: ``simulate``/``solve`` (:mod:`~eqx_jax.cli.games`), ``train``/``evaluate``/
``export``/``import`` (:mod:`~eqx_jax.cli.training`), and those registered by outer layers
(``bench`` from ``baselines``, ``serve``/``user`` from ``serve``).
"""

from eqx_jax.cli.common import (
    CliError,
    add_game_args,
    fmt,
    params_from_args,
    positive_int,
    print_json,
    print_table,
)
from eqx_jax.cli.games import equilibrium_summary, incomplete_info_references, print_equilibrium
from eqx_jax.cli.main import build_parser, main

__all__ = [
    "CliError", "add_game_args", "build_parser", "equilibrium_summary", "fmt",
    "incomplete_info_references", "main", "params_from_args", "positive_int", "print_equilibrium",
    "print_json", "print_table",
]
