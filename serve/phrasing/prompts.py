"""What the LLM is asked and how its answer is cleaned: the founding design's prompt
(``design_messages``, "LLM Service (Ollama)"), the few-shot chat form for small models
(``chat_messages``), both with the style examples, ``build_messages`` to pick one, and
``clean_llm_text`` for the answer."""

from __future__ import annotations

import re

from serve.phrasing.prices import format_price
from serve.phrasing.types import MoveContext

__all__ = ["CHAT_SYSTEM", "PLACEHOLDER", "build_messages", "chat_messages", "clean_llm_text",
           "design_messages", "placeholder_messages", "price_grammar"]

# The founding design's examples, rewritten per action with the placeholder PRICE instead of
# concrete prices: small models copy numbers from examples, so the prompt fills in the move's own
# price (``format_price``) and a copied example can only state the right one.
_STYLE_EXAMPLES: dict[str, dict[str, tuple[str, str]]] = {
    "aggressive": {
        "COUNTER": (
            "That is unacceptable. I need at least PRICE or I walk.",
            "You're wasting my time. My final offer is PRICE, take it or leave it.",
        ),
        "ACCEPT": (
            "Fine, PRICE it is. We have a deal, so send the contract today.",
            "I accept PRICE. Send the contract today and do not make me wait.",
        ),
        "WALK_AWAY": (
            "PRICE is a joke and I will not waste more time. I am walking away.",
            "No deal at PRICE. I'm done here and walking away from this table.",
        ),
    },
    "cooperative": {
        "COUNTER": (
            "I appreciate your offer. Could we meet at PRICE for mutual benefit?",
            "Let's find a win-win. How about PRICE to build a long-term partnership?",
        ),
        "ACCEPT": (
            "Thank you, PRICE works for us. We have a deal, and we look forward to our work.",
            "I'm happy to accept PRICE. Let's proceed together and build a lasting partnership.",
        ),
        "WALK_AWAY": (
            "Thank you for your time, but PRICE does not work for us, so we must walk away.",
            "I'm sorry, but at PRICE we have to walk away. I hope we work together in future.",
        ),
    },
    "analytical": {
        "COUNTER": (
            "Based on market data, my offer of PRICE represents fair value for both sides.",
            "The cost structure supports an offer of PRICE. I can explain the breakdown if useful.",
        ),
        "ACCEPT": (
            "The numbers check out: PRICE is within our acceptable range, so I accept the offer.",
            "PRICE fits our analysis of fair value for this contract. We have a deal.",
        ),
        "WALK_AWAY": (
            "Our analysis shows PRICE does not cover our costs, so I am walking away for now.",
            "The data does not support PRICE, so I am walking away from this negotiation.",
        ),
    },
}


def _intent_text(ctx: MoveContext) -> str:
    """The move as an instruction, with the exact price string the message must contain."""
    if ctx.action == "ACCEPT":
        return f"accept the other side's offer of {format_price(ctx.price or 0.0)}"
    if ctx.action == "COUNTER":
        return f"make a counter-offer of {format_price(ctx.price or 0.0)}"
    if ctx.price is None:
        return "walk away from the negotiation"
    return f"walk away from the offer of {format_price(ctx.price)}"


def _examples(ctx: MoveContext) -> list[str]:
    """The style's two examples for this action, with the move's own price filled in."""
    fill = format_price(ctx.price) if ctx.price is not None else "this offer"
    filled = [e.replace("PRICE", fill) for e in _STYLE_EXAMPLES[ctx.style][ctx.action]]
    return [e[0].upper() + e[1:] for e in filled]


def _history_text(ctx: MoveContext) -> str:
    """Earlier offers in words, without their numbers: small models repeat any number they see,
    which the guard would reject as another price."""
    if not ctx.offer_history:
        return "none, this is the opening move"
    last_role, last_price = ctx.offer_history[-1]
    n = len(ctx.offer_history)
    parts = [f"{n} earlier offer{'s' if n != 1 else ''}", f"the last one was by the {last_role}"]
    if ctx.price is not None and ctx.action == "COUNTER" and last_role != ctx.role:
        parts.append("your new price is " + ("higher" if ctx.price > last_price else "lower"))
    return "; ".join(parts)


def _price_rule(ctx: MoveContext) -> str:
    if ctx.price is None:
        return "Use no numbers."
    return f'It must contain "{format_price(ctx.price)}" and no other number.'


def design_messages(ctx: MoveContext) -> list[dict[str, str]]:
    """The founding design's prompt ("LLM Service (Ollama)") with its "Style Examples", as one
    user message. Changes: the exact price string to use, 1-2 sentences instead of 2-3 (fewer
    chances to contradict), and the history in words (see ``_history_text``)."""
    price = format_price(ctx.price) if ctx.price is not None else "none (no standing offer)"
    user = (
        f"You are a {ctx.role} in a negotiation. Your personality is {ctx.style}.\n\n"
        "Current Context:\n"
        f"- Your internal strategy suggests: {ctx.action} ({_intent_text(ctx)})\n"
        f"- Price point: {price}\n"
        f"- Round: {ctx.round}/{ctx.max_rounds}\n"
        f"- History: {_history_text(ctx)}\n\n"
        "Generate a natural negotiation message that:\n"
        f"1. Reflects the {ctx.style} personality\n"
        f"2. Communicates the strategic intent: {ctx.action}\n"
        "3. Stays within 1-2 sentences\n"
        "4. Maintains professional business tone\n"
        f"5. {_price_rule(ctx)}\n\n"
        "Style Examples:\n" + "\n".join(f"- {e}" for e in _examples(ctx)) + "\n\nResponse:"
    )
    return [{"role": "user", "content": user}]


CHAT_SYSTEM = (
    "You write short messages for a business price negotiation: one or two sentences, in a "
    "professional tone, with the exact price you are given and no other number."
)


def chat_messages(ctx: MoveContext) -> list[dict[str, str]]:
    """A compact prompt for small models: the style examples as earlier chat turns, which a 135M
    model imitates far better than a list of instructions (measured: docs/phrasing.md).

    The system message is the same for every move and the per-move facts come last, so llama.cpp
    reuses the cached prefix of the previous prompt (prompt evaluation dominates the latency)."""
    ask = f"Write a {ctx.style} message to {_intent_text(ctx)}."
    messages = [{"role": "system", "content": CHAT_SYSTEM}]
    for example in _examples(ctx):
        messages += [{"role": "user", "content": ask},
                     {"role": "assistant", "content": example}]
    messages.append({"role": "user", "content": (
        f"You are the {ctx.role}, round {ctx.round} of {ctx.max_rounds}. Write another "
        f"{ctx.style} message to {_intent_text(ctx)}, in new words. {_price_rule(ctx)}")})
    return messages


#: What the LLM writes where the price goes (``prompt="placeholder"``); the server replaces it
#: with the move's exact price (``clean_llm_text``), so the model never has to copy a number.
PLACEHOLDER = "{price}"


def placeholder_messages(ctx: MoveContext) -> list[dict[str, str]]:
    """The ``chat`` form with ``PLACEHOLDER`` instead of the price, and no round: the model never
    sees a number, and the prompt depends only on (style, action, role), so llama.cpp answers
    from its prompt cache after the first message of each kind (prompt evaluation is most of the
    latency: docs/phrasing.md, "Speed")."""
    has_price = ctx.price is not None
    fill = PLACEHOLDER if has_price else "this offer"
    examples = [e.replace("PRICE", fill) for e in _STYLE_EXAMPLES[ctx.style][ctx.action]]
    intent = _intent_text(ctx).replace(format_price(ctx.price or 0.0), PLACEHOLDER)
    ask = f"Write a {ctx.style} message to {intent}."
    messages = [{"role": "system", "content": CHAT_SYSTEM_PLACEHOLDER}]
    for example in examples:
        messages += [{"role": "user", "content": ask},
                     {"role": "assistant", "content": example[0].upper() + example[1:]}]
    rule = (f"Write the price as {PLACEHOLDER} and use no number." if has_price
            else "Use no numbers.")
    messages.append({"role": "user", "content": (
        f"You are the {ctx.role}. Write another {ctx.style} message to {intent}, in new words. "
        f"{rule}")})
    return messages


CHAT_SYSTEM_PLACEHOLDER = (
    "You write short messages for a business price negotiation: one or two sentences, in a "
    f"professional tone. Write the price as {PLACEHOLDER} and use no number."
)

# GBNF (llama.cpp grammar) pieces: text with no digit, no sentence end or newline, and none of
# the characters the guard reads as a leftover (brackets, braces, quotes, "<>", "*", backquote,
# backslash, currency signs), so no number other than the placeholder can be written in digits,
# nor another placeholder.
_NOT_TEXT = '0-9{}\\[\\]$\\n.!?\\x22<>*\\x60\\x5C\\u00A3\\u20AC'
_GBNF_COMMON = (
    f'text ::= [^{_NOT_TEXT}]\n'
    'end ::= [.!?]\n'
    'more ::= (" " text{2,100} end)?\n'
)


#: How an answer of each action begins (``price_grammar``): words that state the move's intent,
#: then the price. Measured on the recorded sample (docs/phrasing.md, "The guard"): without them
#: the 135M model left the intent unstated or turned it around in a third of its answers.
OPENERS: dict[str, tuple[str, ...]] = {
    "ACCEPT": ("I accept ", "We accept ", "Agreed at "),
    "COUNTER": ("I propose ", "We can offer ", "My counteroffer is ", "I can offer "),
    "WALK_AWAY": ("I am walking away from ", "We are walking away from ",
                  "I must walk away from "),
}
#: The same for a move without a price (no standing offer to name).
OPENERS_NO_PRICE: dict[str, tuple[str, ...]] = {
    "WALK_AWAY": ("I am walking away from this negotiation", "We are ending this negotiation"),
}


def _alternatives(words: tuple[str, ...]) -> str:
    return "(" + " | ".join(f'"{w}"' for w in words) + ")"


def price_grammar(ctx: MoveContext) -> str:
    """A llama.cpp GBNF grammar for the answer: it opens with words of the move's intent
    (``OPENERS``) and then ``PLACEHOLDER``, exactly once, when the move has a price; then the
    rest of that sentence and at most one more, with no digits anywhere. A text that follows it
    states its intent and its price first and can fail the guard only on what it adds, never on
    a number in digits; cut off by ``num_predict``, it still has its first words."""
    if ctx.price is None:
        openers = OPENERS_NO_PRICE.get(ctx.action)
        head = f"{_alternatives(openers)} text{{0,100}}" if openers else "text{2,120}"
        return f"root ::= {head} end more\n" + _GBNF_COMMON
    return (f'root ::= {_alternatives(OPENERS[ctx.action])} "{PLACEHOLDER}" text{{0,80}} end '
            "more\n" + _GBNF_COMMON)


def build_messages(ctx: MoveContext, prompt: str = "design") -> list[dict[str, str]]:
    """Chat messages for the LLM: ``prompt="design"`` (the founding design's prompt) or
    ``"chat"`` (compact few-shot turns, the default for the embedded 135M model)."""
    if prompt == "chat":
        return chat_messages(ctx)
    if prompt == "design":
        return design_messages(ctx)
    if prompt == "placeholder":
        return placeholder_messages(ctx)
    raise ValueError(f"prompt must be 'design', 'chat' or 'placeholder', got {prompt!r}")


_LABEL = re.compile(r"^\s*(?:response|message|answer|supplier|retailer|assistant|me)\s*:\s*",
                    re.IGNORECASE)


def clean_llm_text(raw: str, ctx: MoveContext, fill: str | None = None) -> str:
    """Post-process a model's answer: first paragraph, no label or quotes, PRICE filled in (with
    ``fill`` where given: a move's terms in words, else the move's price), and a sentence cut
    off by the token limit dropped."""
    text = raw.strip()
    text = text.split("\n\n")[0].strip()
    text = " ".join(line.strip().lstrip("-* ").strip() for line in text.splitlines() if line)
    text = _LABEL.sub("", text).strip().strip('"“”').strip()
    if ctx.price is not None:
        # An uppercase PRICE (or a bracketed price of any case) is the placeholder the examples
        # are written with; "price" as an ordinary word is left alone.
        # The bracketed forms are filled wherever they stand, also glued to a word (the guard
        # then judges the result); "$" before any placeholder is the price's own.
        value = fill if fill is not None else format_price(ctx.price or 0.0)
        text = re.sub(r"(?:\$\s*)?(?:\[\s*price\s*\]|\{\s*price\s*\}|<\s*price\s*>)",
                      lambda _m: value, text, flags=re.I)
        text = re.sub(r"\$\s*PRICE\b|\bPRICE\b", lambda _m: value, text)
    # Drop an unfinished trailing sentence (the answer hit num_predict), keeping at least one.
    if text and text[-1] not in ".!?":
        cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        if cut > 0:
            text = text[: cut + 1]
    return text
