"""Exact game-theoretic solvers of the games (NumPy / SciPy only, independent of the envs)."""
