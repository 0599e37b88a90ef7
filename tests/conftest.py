"""Every test process: JAX's persistent compilation cache off unless a test turns it on with its
own directory (the ``eqx`` command turns it on by default; tests stay hermetic and do not share
a cache directory between pytest-xdist workers)."""

import os

os.environ.setdefault("EQX_COMPILE_CACHE", "0")
