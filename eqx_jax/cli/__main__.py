"""``python -m eqx_jax.cli ...``: the ``eqx`` command without the console script on PATH."""

import sys

from eqx_jax.cli.main import main

sys.exit(main())
