"""EquilibriumX live server: FastAPI + WebSocket API that streams trained ``eqx_jax``
agents negotiating, each move phrased by an LLM. Start it with ``eqx serve``; see docs/server.md.

Nothing in ``eqx_jax`` imports this package; it needs the ``serve`` extra.
"""
