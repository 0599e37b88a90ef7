"""The guard: may this text be sent for this move? ``check_message`` (form, tone, numbers,
intent) and its intent half ``check_intent``.

The rules are written so that a text that contradicts its move cannot pass, at the price of
rejecting some faithful ones: a false rejection costs one template message, a false acceptance
contradicts the strategy. They are deliberately blunt where meaning is subtle: the move's price is
the only amount a message may name, in any spelling; acceptance that is negated, questioned,
conditional, hypothetical, deferred or qualified is refused; a counter may not close or leave; a
walk-away may not stay, waver, close or propose. See docs/phrasing.md, "The guard".
"""

from __future__ import annotations

import math
import re

from serve.phrasing.prices import normalize_text, read_numbers, whole_units

__all__ = ["check_intent", "check_message", "unprofessional"]

_I = re.IGNORECASE


def _rx(*parts: str) -> re.Pattern[str]:
    """One case-insensitive alternation of ``parts``, on word boundaries."""
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", _I)


# --- form and tone ----------------------------------------------------------------------------

# Unfilled placeholders, chat-template leftovers, prompt echoes, numbered lists.
_LEFTOVER = re.compile(
    r"[\[\]{}<>\\`\"]|[$£€](?!\s?\d)|\*\w+\*|\bprice_?str\b|\bassistant\b|\bmust contain\b|"
    r"\bin new words\b|"
    r"\bstyle examples?\b|\bstrategic intent\b|(?:^|[.!?:]\s)\d{1,2}[.)]\s|"
    r"\bhere(?:'s| is) (?:a |my |the |an )?(?:new |possible |sample )?(?:message|example|"
    r"response|answer|reply)\b|\bno other numbers?\b|\byou(?:'re| are) the (?:retailer|supplier)\b",
    _I,
)
_PLACEHOLDER_WORD = re.compile(r"\b(?:PRICE|XX+|N/A|TBD)\b")  # case-sensitive on purpose
_INSULT = _rx(
    r"stupid\w*", r"idiot\w*", r"dumb\w*", r"moron\w*", r"imbecile\w*", r"fool(?:s|ish)?",
    r"loser\w*", r"clowns?", r"pathetic", r"jerks?", r"scum\w*", r"bastards?", r"bitch\w*",
    r"crap\w*", r"bull ?shit\w*", r"shit\w*", r"damn\w*", r"dammit", r"hell", r"fuck\w*",
    r"asshole\w*", r"ass", r"arse\w*", r"piss\w*",
    r"screw (?:you|this|that|it|off)", r"shut up", r"get lost", r"wtf", r"stfu", r"bs",
    r"suck(?:s|er)?", r"freaking", r"frigging", r"effing", r"cheapskates?", r"liars?",
    r"crooks?", r"thie(?:f|ves)", r"clueless", r"incompetent",
)
# Censored swearing ("f***", "sh*t", "b*tch"): no word boundary after the mask characters.
_CENSORED = re.compile(r"\b(?:f|sh|b|a|d)[*@#$!]{2,}\w*|\b(?:f[*@#]ck|sh[*!1]t|b[*!1]tch)", _I)
# Shouting: three words of two or more capitals in a row ("THIS IS FINAL"), or "!!" / "?!".
_SHOUT = re.compile(r"(?:\b(?!USD\b)[A-Z]{2,}\b[\s,.!?]+){2}\b(?!USD\b)[A-Z]{2,}\b|[!?]{2,}")


def unprofessional(text: str) -> bool:
    """True for an insult, a swear word (censored ones too: "f***"), or shouting."""
    text = normalize_text(text)
    return bool(_INSULT.search(text) or _CENSORED.search(text) or _SHOUT.search(text))


def _repeats(text: str) -> bool:
    """True if a sentence of four or more words comes twice (a looping model)."""
    seen = set()
    for sentence, _question in _sentences(normalize_text(text).lower()):
        if len(sentence.split()) >= 4:
            if sentence in seen:
                return True
            seen.add(sentence)
    return False


# --- numbers ----------------------------------------------------------------------------------

# Words that change what the stated price means: per unit, plus tax, less a rebate, half of it.
_PRICE_MODIFIER = _rx(
    r"per (?:unit|piece|item|month|week|year|day|hour|box|pallet|order)", r"each", r"apiece",
    r"a (?:unit|piece|month|year)", r"monthly", r"weekly", r"yearly", r"annually", r"plus",
    r"minus", r"excluding", r"excl", r"exclusive of", r"before tax(?:es)?", r"after tax(?:es)?",
    r"net of", r"discount\w*", r"rebate\w*", r"surcharge\w*", r"mark ?-?up", r"deposit",
    r"down payment", r"up ?-?front", r"instal+ments?", r"knock(?:ed)? \w+ off", r"off the top",
    r"bonus\w*", r"premium\w*", r"commission\w*", r"fees?",
    r"in (?:euros?|pounds|yen|francs|yuan|rupees|bitcoin|crypto\w*|shares|stock|kind|credit)",
    r"by (?:us\$|usd|\$|€|£)\s?\d",
)


def _number_reason(text: str, price: float | None) -> str | None:
    """The number half of the guard: the move's price (whole units) stated, and no other amount,
    percentage or modifier; counts of rounds, days and the like are allowed."""
    target = None if price is None else whole_units(price)
    amounts = [n for n in read_numbers(text) if n.kind != "count"]
    own = [n for n in amounts if n.kind == "amount" and not math.isnan(n.value)
           and whole_units(n.value) == target]
    if target is not None and not own:
        return "missing_price"
    others = [n for n in amounts if n not in own]
    if others:
        return "other_percentage" if others[0].kind == "percent" else "other_price"
    if _PRICE_MODIFIER.search(text):
        return "price_modifier"
    return None


# --- clauses ----------------------------------------------------------------------------------

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\s*(?:;|:|\.\.\.|\s-\s)\s*")
_CLAUSE_SPLIT = re.compile(
    r"\s*,(?!\d)\s*|\s+(?=\b(?:but|however|though|although|yet|so|and|because|while|whereas|"
    r"otherwise|unless|except)\b)", _I)


def _sentences(text: str) -> list[tuple[str, bool]]:
    """``(sentence, is_question)`` pairs of ``text`` (already normalized)."""
    out = []
    for s in _SENTENCE_SPLIT.split(text):
        s = s.strip()
        if s:
            # A tag ("..., right?") does not make a statement a question.
            tag = re.search(r",\s*(?:right|yes|correct|ok|okay|no)\s*\?$", s, _I)
            out.append((s, s.endswith("?") and not tag))
    return out


def _clauses(sentence: str) -> list[str]:
    """The clauses of a sentence: split at commas and at conjunctions (kept at the start)."""
    return [c for c in _CLAUSE_SPLIT.split(sentence) if c and c.strip()]


_CONTRACTIONS = [
    (r"\blet's\b", "let us"), (r"n't\b", " not"), (r"\bcan not\b", "cannot"), (r"'d\b", " would"),
    (r"'ll\b", " will"), (r"'re\b", " are"), (r"'m\b", " am"), (r"'ve\b", " have"),
    (r"\bwo not\b", "will not"), (r"\bca not\b", "cannot"), (r"\bsha not\b", "shall not"),
]


def _expand(text: str) -> str:
    """Contractions spelled out ("won't" -> "will not", "I'd" -> "I would"), lowercase."""
    text = normalize_text(text).lower()
    for pattern, repl in _CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    return text


_PRICE_TOKEN = re.compile(r"(?:us\$|usd|\$)?\s?\d[\d,.']*\d?(?:\s?k\b)?", _I)
_NEGATION = _rx(r"not", r"never", r"no", r"unable", r"cannot", r"refuse\w*", r"nor", r"neither",
                r"nothing", r"nobody", r"hardly", r"barely", r"none", r"nowhere", r"without")
# Negative words that do not negate the move ("no problem", "without delay", "no later than").
_NEGATION_IDIOMS = _rx(
    r"no problem", r"not a problem", r"no doubt", r"no later than", r"not only", r"no surprises",
    r"without (?:delay|surprises|hesitation|further delay|fail)", r"no hesitation",
    r"no excuses", r"no more (?:back and forth|haggling|delays?)", r"not to worry",
    r"do not (?:make|keep) (?:me|us) wait(?:ing)?", r"do not delay", r"do not hesitate",
    r"no (?:further )?delays?",
)


def _negated(clause: str) -> bool:
    """True if ``clause`` holds a negation that is not one of the harmless idioms."""
    return bool(_NEGATION.search(_NEGATION_IDIOMS.sub(" ", clause)))


# --- ACCEPT -----------------------------------------------------------------------------------

_ACCEPT_CUE = _rx(
    r"accept\w*", r"agree\w*", r"deal", r"sounds good", r"works", r"work for (?:me|us)",
    r"let us (?:proceed|close|finali[sz]e|move forward|sign)", r"happy to proceed",
    r"confirm\w*", r"yes", r"i will take", r"we will take", r"\d it is", r"okay", r"ok", r"fine",
)
_REFUSAL = _rx(
    r"not a chance", r"no way", r"no chance", r"nope", r"forget it", r"not happening",
    r"in your dreams", r"dream on", r"as if", r"yeah,? right", r"when pigs fly",
    r"over my dead body", r"you wish", r"no thanks?", r"nothing doing", r"i do not think so",
    r"think again", r"not likely", r"impossible", r"out of the question", r"unthinkable",
    r"off the table", r"no-go", r"you must be (?:joking|kidding)", r"are you (?:joking|"
    r"kidding|serious)", r"nice try", r"good luck with that",
)
_RETRACTION = _rx(r"just (?:kidding|joking)", r"kidding", r"not really", r"or not",
                  r"scratch that", r"on second thought", r"never ?mind", r"wait,? actually",
                  r"actually,? no", r"psych", r"reconsider\w*", r"changed? (?:my|our) mind")
_HYPOTHETICAL = _rx(
    r"if", r"unless", r"provided", r"providing", r"as long as", r"on condition", r"assuming",
    r"in theory", r"theoretical\w*", r"hypothetical\w*", r"suppose", r"supposing",
    r"in principle", r"might", r"may", r"maybe", r"perhaps", r"possibly", r"could", r"should",
    r"would(?! (?:be )?(?:happy|glad|pleased|delighted) to)", r"consider\w*",
    r"think(?:ing)? (?:about|it over)", r"get back to you", r"close to", r"almost", r"nearly",
    r"about to", r"pending", r"subject to", r"once", r"tentative\w*", r"in a (?:week|month)",
    r"next (?:week|month|quarter|year|time)", r"some (?:day|point|time)", r"on a good day",
    r"after (?:our|my|the) (?:board|team|manager|review)\w*", r"let us say", r"say we",
    r"imagine", r"pretend", r"what if", r"only", r"in (?:exchange|return) for", r"soon",
    r"later", r"eventually", r"will be (?:accepted|agreed|confirmed|finali[sz]ed)",
)
_CLOSING_DONE = re.compile(r"\b(?:i|we) (?:am|are) (?:done|finished)\b", _I)
_QUALIFIER_START = re.compile(
    r"^(?:but|however|though|although|yet|except|unless|if|provided|as long as|only)\b", _I)
_DISPARAGE = _rx(
    r"joke", r"joking", r"ridiculous", r"absurd", r"insult\w*", r"laughable", r"outrageous",
    r"rip-? ?off", r"robbery", r"scam", r"nonsense", r"what a deal", r"some deal",
    r"too (?:high|low|much|steep|expensive|cheap|generous)", r"unacceptable", r"overpriced",
)
_OTHERS_ACCEPT = re.compile(
    r"\baccepted by\b|\bplease (?:accept|agree)|"
    r"\b(?:they|he|she|someone|somebody|others?|competitors?|you)\s+(?:\w+\s+)?"
    r"(?:accept|agree)\w*", _I)
# Counter / reject language: forbidden on ACCEPT.
_REJECT = _rx(
    r"counter(?:[- ]?offer)?s?", r"instead", r"reject(?:ing|ed)?", r"declin(?:e|ing|ed)",
    r"how about", r"what about", r"propose", r"final offer", r"lower", r"higher",
    r"meet (?:me|us) at", r"next (?:round|offer)", r"keep (?:talking|negotiating)",
    r"continue negotiating", r"split the difference", r"come down", r"go up", r"better offer",
    r"can you do better", r"best you can do", r"(?:i|we) (?:am |are )?offer(?:ing)?",
    r"(?:my|our) (?:\w+ ){0,2}(?:offer|price|counter|bid|ask|quote)", r"(?:i|we) can offer",
    r"(?:here|ready|want|need) to negotiate", r"negotiate further", r"further negotiations?",
    r"(?:i|we) (?:need|want|require|demand|expect|ask for) (?:at least |a |an )?"
    r"(?:us\$|usd|\$)?\s?\d",
)
# Leaving the table: required on WALK_AWAY, forbidden on ACCEPT and (unless a threat) COUNTER.
_WALK = _rx(
    r"walk(?:ing|in'?|s|ed)? away", r"walk(?:ing)? out", r"(?:i|we) (?:am|are) out",
    r"i am out of here",
    r"leav(?:e|ing) (?:the )?(?:table|negotiation|talks|deal)", r"(?:i|we) (?:am|are|will be) "
    r"leaving", r"end(?:ing|s)? (?:the |these |this |our )?(?:negotiation|talks|discussion)s?",
    r"no deal", r"(?:i|we) (?:am|are) done", r"withdraw(?:ing|n)?", r"pull(?:ing)? out",
    r"goodbye", r"step(?:ping|s)? (?:away|back|out)", r"moving on", r"move on",
    r"terminat(?:e|ing)", r"negotiation is over", r"talks are over", r"this is over",
    r"we are finished", r"i am finished", r"calling it off", r"call it off",
    r"(?:going to|will|must|have to|need to) leave",
)
# "... or I walk" on a COUNTER is a threat, not leaving: removed before the walk check.
_THREAT = re.compile(
    r"\b(?:or|otherwise|else)\s*,?\s*(?:i|we)(?: will| shall| am| are)?\s+"
    r"(?:have to |must |need to |be )?"
    r"(?:walk(?:ing)?(?: away)?|leav(?:e|ing)|move on|step away|end (?:this|the talks))",
    _I,
)


def _accept_reason(text: str) -> str | None:
    """ACCEPT: an unconditional, unqualified acceptance by the speaker, and nothing else."""
    if _REFUSAL.search(text):
        return "intent:refusal"
    if _RETRACTION.search(text):
        return "intent:retraction"
    if _REJECT.search(text):
        return "intent:counter_language"
    # "We're done here" closes an accepted deal as often as it leaves one: not walk language here.
    if _WALK.search(_CLOSING_DONE.sub(" ", text)):
        return "intent:walk_language"
    if _OTHERS_ACCEPT.search(text):
        return "intent:not_own_acceptance"
    if re.search(r"(?:^|[.!?]\s)(?:in order )?to (?:accept|agree)", text):
        return "intent:conditional_acceptance"
    seen_cue = False
    for sentence, question in _sentences(text):
        if len(sentence.split()) <= 3 and _negated(sentence):
            return "intent:refusal"  # "Not." / "No." / "Hardly." after the acceptance
        about_sentence = bool(_ACCEPT_CUE.search(sentence) or _PRICE_TOKEN.search(sentence))
        if about_sentence and _HYPOTHETICAL.search(sentence):
            return "intent:conditional_acceptance"
        for clause in _clauses(sentence):
            cue = bool(_ACCEPT_CUE.search(clause))
            about = cue or bool(_PRICE_TOKEN.search(clause))
            if seen_cue and (_QUALIFIER_START.search(clause) or _negated(clause)):
                return "intent:qualified_acceptance"  # "..., but not today", "no to the rest"
            if about and question:
                return "intent:questioned_acceptance"
            if about and _negated(clause):
                return "intent:negated_acceptance"
            if about and _DISPARAGE.search(clause):
                return "intent:disparages_price"
            seen_cue = seen_cue or cue
    return None if seen_cue else "intent:no_acceptance"


# --- COUNTER ----------------------------------------------------------------------------------

_DEAL_CLAIM = _rx(
    r"(?:we|you) (?:have )?(?:got )?(?:ourselves |yourself )?(?:a|our) deal", r"it is a deal",
    r"that is a deal", r"deal(?: is)? (?:done|closed|settled|made|struck|sealed)",
    r"done (?:deal|at|for)", r"deal done", r"it is done", r"consider it (?:done|closed|settled)",
    r"that is done", r"settled",
    r"we are (?:all )?set", r"sold", r"in agreement", r"agreed", r"we have an agreement",
    r"reached (?:an |a )?(?:agreement|deal)", r"pleasure doing business", r"shake on it",
    r"shak(?:e|ing) hands", r"sealed", r"sign(?:ing)? (?:the|our) (?:contract|deal|papers)",
    r"send (?:me |us |you |over )?the (?:contract|paperwork|invoice|purchase order|po)",
    r"finali[sz]ed?", r"confirmed", r"(?:matter|deal) (?:is )?closed", r"welcome aboard",
    r"thanks? (?:you )?for accepting", r"look(?:ing)? forward to (?:the )?delivery", r"deal!",
    r"works for (?:me|us)", r"(?:happy|pleased|satisfied|content|fine) with (?:it|that|this|the "
    r"price|(?:us\$|usd|\$)\s?\d)", r"fine by (?:me|us)", r"sounds good",
    r"let us close", r"close (?:it|this|the deal)", r"send the order",
)
_PRICE_IT_IS = re.compile(r"\d\s+it\s+is\b|^\s*deal\s*[.!]|[.!?]\s+deal\s*[.!]", _I)
_ACCEPT_VERB = re.compile(
    r"\b(?:accept\w*|agree\w*|"
    r"(?:i|we) (?:will|am going to|are going to) take (?:it|that|your|the))", _I)
# Frames in which "accept"/"agree" on a COUNTER is a proposal or a refusal, not a closing.
_PROPOSAL_FRAME = re.compile(
    r"(?:\b(?:not|never|unable to|cannot|no longer)\s+(?:\w+\s+){0,2}|"
    r"\b(?:would|will|can|could|might|may|please|hope|if|let us|shall|should|able to|try to)"
    r"\s+(?:you|we|they)?\s*(?:\w+\s+){0,2})$", _I)
# "make a deal", "a fair deal": a deal on a COUNTER that is proposed, not claimed.
_DEAL_FRAME = re.compile(r"\b(?:make|reach|strike|find|get|work out|towards?|fair|good|better|"
                         r"great|real|win-win|solid|sensible|balanced)\s+(?:a |the |this |our )?$",
                         _I)
_ATTRIBUTED = re.compile(
    r"\byou (?:want|ask|asking|offer|offered|demand|expect|propose)\b|\byou are asking\b|"
    r"\byour (?:\w+ )?(?:ask|offer|price|number|figure|bid|quote|proposal)s?[,:]? "
    r"(?:of |is |was |at |to |from |stands at )?(?:us\$|usd|\$)?\s?\d|\byour (?:us\$|usd|\$)\s?\d|"
    r"\byou\b(?:(?!\b(?:my|our|i|we)\b)[^.?!]){0,40}?\b(?:counter-?offer|offer|ask|propos|bid|"
    r"quote)\w*\s+(?:of\s+|at\s+|is\s+|was\s+)?(?:us\$|usd|\$)\s?\d",
    _I)
# An offer cue: required on COUNTER (with the price, it reads as a proposal).
_OFFER = _rx(
    r"offer\w*", r"propos(?:e|al)", r"counter\w*", r"how about", r"what about", r"would", r"could",
    r"can", r"let us", r"suggest", r"willing", r"meet", r"ask(?:ing)?", r"price", r"best", r"final",
    r"need", r"want", r"pay", r"sell", r"supply", r"quote", r"at", r"support", r"fair", r"value",
    r"figure", r"number", r"take", r"settle on", r"firm", r"(?:not a|no) (?:cent|penny|dollar) "
    r"(?:less|more)", r"nothing (?:less|more)",
)
_FLOOR = _rx(r"than", r"below", r"above", r"under", r"over", r"less", r"lower", r"higher",
             r"cent", r"penny", r"dime", r"dollar", r"budge", r"bend\w*")


def _counter_reason(text: str) -> str | None:
    """COUNTER: proposes the price as the speaker's own, without closing or leaving."""
    if re.search(r"\b(?:just (?:kidding|joking)|not really|scratch that|on second thought|"
                 r"never ?mind)\b", text, _I):
        return "intent:retraction"
    for sentence, question in _sentences(text):
        if question:
            continue  # "Do we have a deal at $6,695?" is a proposal
        if _DEAL_CLAIM.search(sentence) or _PRICE_IT_IS.search(sentence):
            return "intent:claims_deal"
        for m in _ACCEPT_VERB.finditer(sentence):
            if not _PROPOSAL_FRAME.search(sentence[: m.start()]):
                return "intent:claims_deal"
        for m in re.finditer(r"\bdeal\b(?!-breaker| (?:that|which|where|for both))", sentence, _I):
            if not _DEAL_FRAME.search(sentence[: m.start()]):
                return "intent:claims_deal"
    if _WALK.search(_THREAT.sub(" ", text)):
        return "intent:walk_language"
    if _ATTRIBUTED.search(text):
        return "intent:price_attributed"
    for sentence, _question in _sentences(text):
        for clause in _clauses(sentence):
            if not _PRICE_TOKEN.search(clause):
                continue
            if _negated(clause) and not _FLOOR.search(clause):
                return "intent:negated_offer"
            if _DISPARAGE.search(clause):
                return "intent:disparages_price"
    return None if _OFFER.search(text) else "intent:no_offer"


# --- WALK_AWAY --------------------------------------------------------------------------------

_WALK_COUNTER = _rx(
    r"how about", r"what about", r"(?:i|we) propose", r"counter[- ]?offer", r"my offer is",
    r"our offer is", r"(?:i|we) can do (?:it )?(?:for |at )?(?:us\$|usd|\$)?\s?\d",
    r"keep (?:talking|negotiating)", r"continue",
    r"next round", r"let us talk", r"better offer", r"make (?:me|us) an? offer", r"instead",
    r"(?:i|we) (?:am|are|will|can|would) (?:\w+ )?offer\w*",
)
_WALK_HEDGE = _rx(
    r"if", r"unless", r"might", r"may", r"maybe", r"perhaps", r"possibly", r"could", r"would",
    r"should", r"consider\w*", r"thinking (?:of|about)", r"about to", r"close to", r"almost",
    r"nearly", r"ready to", r"tempted", r"or else", r"before", r"otherwise", r"until",
    r"tomorrow", r"be back", r"back at the table", r"for a (?:moment|minute|second|bit|while)",
    r"for (?:a few|a couple of|\w+) (?:minutes?|hours?|seconds?|moments?)", r"see you",
)
_APPROVAL = _rx(r"works?", r"acceptable", r"fine", r"happy", r"good", r"fair", r"great",
                r"reasonable", r"accept\w*", r"agree\w*", r"deal")
# Praise of the offer being left: "too good to pass up", "a generous offer".
_OFFER_PRAISE = _rx(r"too good", r"hard to refuse", r"cannot refuse", r"(?:great|generous|fair|"
                    r"good|excellent|attractive) offer")


def _walk_reason(text: str) -> str | None:
    """WALK_AWAY: leaves, now and unconditionally, without closing, proposing or approving."""
    if _RETRACTION.search(text):
        return "intent:retraction"
    if _DEAL_CLAIM.search(text) or _PRICE_IT_IS.search(text):
        return "intent:claims_deal"
    for m in _ACCEPT_VERB.finditer(text):
        if not re.search(r"\b(?:not|never|cannot|unable to|refuse to|no longer)\s+(?:\w+\s+){0,2}$",
                         text[: m.start()], _I):
            return "intent:claims_deal"
    for m in _WALK_COUNTER.finditer(text):
        # "we cannot continue", "not willing to keep negotiating": refusing to go on is leaving.
        before = _CLAUSE_SPLIT.split(re.split(r"[.!?;]", text[: m.start()])[-1])[-1]
        if not _negated(before):
            return "intent:counter_language"
    if _OFFER_PRAISE.search(text):
        return "intent:approves_price"
    walked = False
    for sentence, question in _sentences(text):
        for clause in _clauses(sentence):
            cue = _WALK.search(clause)
            if cue:
                if _negated(clause[: cue.start()]):
                    return "intent:negated_walk"
                if question:
                    return "intent:questioned_walk"
                if _WALK_HEDGE.search(sentence):
                    return "intent:conditional_walk"
                walked = True
            elif (_PRICE_TOKEN.search(clause) and _APPROVAL.search(clause)
                  and not _negated(clause)):
                return "intent:approves_price"
    return None if walked else "intent:no_walk"


def check_intent(text: str, action: str) -> str | None:
    """The intent half of the guard: None if ``text`` reads as ``action``, else the reason
    (``intent:...``)."""
    expanded = _expand(text)
    if action == "ACCEPT":
        return _accept_reason(expanded)
    if action == "COUNTER":
        return _counter_reason(expanded)
    if action == "WALK_AWAY":
        return _walk_reason(expanded)
    raise ValueError(f"action must be one of ACCEPT, COUNTER, WALK_AWAY, got {action!r}")


def form_reason(text: str) -> str | None:
    """The form half of the guard: 3..80 words and no unfilled placeholder or prompt echo
    (``empty``, ``too_long``, ``placeholder``), else None."""
    words = len(text.split())
    if words < 3:
        return "empty"
    if words > 80:
        return "too_long"
    if _LEFTOVER.search(text) or _PLACEHOLDER_WORD.search(text):
        return "placeholder"
    return None


def check_message(
    text: str, action: str, price: float | None, *, max_rounds: int = 10
) -> str | None:
    """The guard. None if ``text`` may be sent for this move, else the reason it may not.

    In order: form (3..80 words, no unfilled placeholder or prompt echo: ``empty``,
    ``too_long``, ``placeholder``), tone (no insult, swearing or shouting: ``unprofessional``),
    numbers (the move's price, rounded half-up to whole currency units, is stated in any
    spelling, and no other amount in any form, digits or words, nor a percentage nor a price
    modifier such as "per unit" or "plus tax": ``missing_price``, ``other_price``,
    ``other_percentage``, ``price_modifier``; counts of rounds, days and the like are not
    amounts; with ``price=None``, a walk-away with no standing offer, no amount at all), then the
    intent (``check_intent``). ``max_rounds`` is accepted for compatibility: a round count is
    recognised by its wording ("round 3 of 10"), not by its size.
    """
    del max_rounds  # see the docstring: rounds are recognised by wording
    if action not in ("ACCEPT", "COUNTER", "WALK_AWAY"):
        raise ValueError(f"action must be one of ACCEPT, COUNTER, WALK_AWAY, got {action!r}")
    why = form_reason(text)
    if why is None and unprofessional(text):
        why = "unprofessional"
    if why is None and _repeats(text):
        why = "repetition"
    if why is not None:
        return why
    why = _number_reason(text, price)
    return why if why is not None else check_intent(text, action)
