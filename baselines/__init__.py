"""Baselines EquilibriumX is measured against.

* :mod:`baselines.reference_env`: the founding design's environment as a plain-Python PettingZoo
  ``ParallelEnv`` (bugs fixed, same rules as ``docs/rules.md``), written independently of the JAX
  env; it is both the differential-testing oracle and the speed baseline.

Submodules are imported explicitly (``from baselines.reference_env import ...``) so that importing
one baseline does not pull in the dependencies of the others.
"""
