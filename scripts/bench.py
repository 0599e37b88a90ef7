#!/usr/bin/env python
"""Reproducible benchmarks, as a script: ``python scripts/bench.py env --json``,
``python scripts/bench.py train --out bench`` (eqx train vs Ray RLlib and NegMAS).

The same as ``eqx bench ...`` (this only forwards the arguments), kept here so that experiments
can be run from a checkout without the console script on PATH.
"""

import sys

from eqx_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
