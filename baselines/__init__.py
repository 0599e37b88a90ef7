"""Baselines EquilibriumX is measured against.

* :mod:`baselines.reference_env`: the founding design's environment as a plain-Python PettingZoo
  ``ParallelEnv`` (bugs fixed, same rules as ``docs/rules.md``), written independently of the JAX
  env; it is both the differential-testing oracle and the speed baseline.
* :mod:`baselines.rllib_ppo`: Ray RLlib PPO on it (the founding design's trainer).
* :mod:`baselines.negmas_tournament`: the same negotiation in NegMAS, side by side with ours.
* :mod:`baselines.memory`: the peak-memory sampler both benchmarks use.

Submodules are imported explicitly (``from baselines.reference_env import ...``) so that importing
one baseline does not pull in the dependencies of the others.
"""
