"""What an offer of a game beyond one price looks like to a person: its issues by name, with
display values (a discrete issue's label, not its index) and units.

The envs offer D issues in natural units (``NegotiationEnv.offer_bounds``; a discrete issue by
its value index 0..n-1). A person, a log or a message wants names and display values: the
price-quantity game's ``{"price": 45.5, "quantity": 120}``, a scenario's ``{"unit_price": 10.2,
"quantity": 300, "delivery_weeks": 4}`` (the quantity label of index 2), the bundles game's
``{"books": 1, "hats": 2, "balls": 0}`` (the supplier's items; the retailer gets the rest of the
pool). :func:`issue_views` lists them; :func:`offer_to_dict` and :func:`offer_from_dict` convert
both ways, so the server streams and (for a person at the table) reads offers with one rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eqx_jax.checks import FieldError

#: OpenSpiel's three item types of the bundles game, in its order.
BUNDLE_ITEMS = ("books", "hats", "balls")


@dataclasses.dataclass(frozen=True)
class IssueView:
    """One issue as a person sees it.

    ``kind``: "continuous" (a value in [low, high]), "discrete" (one of ``labels``, offered by
    index), or "count" (a whole number of items in [0, high], the bundles game; ``high`` is the
    game's cap, the episode's pool may be smaller). ``unit``: "currency" (an amount of money, a
    unit price), "units" (goods), "days" / "weeks" / "months", "items" or "" (a plain level).
    """

    name: str
    kind: str
    low: float
    high: float
    labels: tuple[float | str, ...] = ()
    unit: str = ""

    def display(self, value: float) -> float | str:
        """The display value of the env's natural-unit ``value`` (a discrete issue's label: a
        number, or a word such as "basic")."""
        if self.kind == "discrete":
            i = int(np.clip(round(float(value)), 0, len(self.labels) - 1))
            return self.labels[i]
        if self.kind == "count":
            return float(round(float(value)))
        return float(value)

    def natural(self, shown: float | str) -> float:
        """The env's natural-unit value of a display value; :class:`FieldError` naming the issue
        and its allowed values when ``shown`` is not one of them."""
        if self.kind == "discrete" and isinstance(shown, str):
            for i, label in enumerate(self.labels):
                if isinstance(label, str) and label.lower() == shown.strip().lower():
                    return float(i)
            raise FieldError(self.name, "one of " + ", ".join(f"{v:g}" if isinstance(v, float)
                                                              else v for v in self.labels), shown)
        if not isinstance(shown, int | float) or isinstance(shown, bool) or not math.isfinite(
                float(shown)):
            raise FieldError(self.name, "a number", shown)
        x = float(shown)
        if self.kind == "discrete":
            for i, label in enumerate(self.labels):
                if isinstance(label, float) and abs(label - x) <= 1e-9 * max(1.0, abs(label)):
                    return float(i)
            raise FieldError(self.name, "one of " + ", ".join(f"{v:g}" if isinstance(v, float)
                                                              else v for v in self.labels), shown)
        if not self.low <= x <= self.high:
            raise FieldError(self.name, f"in [{self.low:g}, {self.high:g}]", shown)
        if self.kind == "count" and x != round(x):
            raise FieldError(self.name, "a whole number of items", shown)
        return x


def _label(x: Any) -> float | str:
    return x if isinstance(x, str) else float(x)


def _unit_of(name: str) -> str:
    n = name.lower()
    if "price" in n and "level" not in n:
        return "currency"
    if "quantity" in n:
        return "units"
    for unit in ("days", "weeks", "months"):
        if n.endswith(unit):
            return unit
    return ""


def scenario_issue_views(scenario: Any) -> tuple[IssueView, ...]:
    """The issues of a multi-issue or group scenario (:class:`eqx_jax.games.scenario.
    Scenario`): a discrete issue's labels are its display values (its indices where it has
    none)."""
    out = []
    for issue in scenario.issues:
        if issue.discrete:
            labels = tuple(_label(x) for x in issue.labels) if issue.labels else tuple(
                float(i) for i in range(issue.num_values))
            out.append(IssueView(issue.name, "discrete", 0.0, issue.num_values - 1.0, labels,
                                 _unit_of(issue.name)))
        else:
            out.append(IssueView(issue.name, "continuous", float(issue.low), float(issue.high),
                                 unit=_unit_of(issue.name)))
    return tuple(out)


def issue_views(game: str, env: Any, params: Any) -> tuple[IssueView, ...]:
    """The D issues of ``env``'s offers (in the env's order) for the registry game ``game``."""
    if game == "price-quantity":
        return (IssueView("price", "continuous", 0.0, float(params.max_price), unit="currency"),
                IssueView("quantity", "continuous", 0.0, float(params.max_quantity),
                          unit="units"))
    if game in ("multi-issue", "group"):
        return scenario_issue_views(env.scenario)
    if game == "bundles":
        from eqx_jax.games.bundles import POOL_MAX_ITEMS

        return tuple(IssueView(n, "count", 0.0, float(POOL_MAX_ITEMS), unit="items")
                     for n in BUNDLE_ITEMS)
    raise ValueError(f"no issue view for the game {game!r}")


def offer_to_dict(issues: Sequence[IssueView], offer: Any) -> dict[str, float | str]:
    """``offer`` (D,) in natural units as ``{issue name: display value}``; continuous values
    rounded to 4 decimals (float32 noise is not a value anyone offered)."""
    values = np.asarray(offer, np.float64).reshape(-1)
    if values.shape != (len(issues),):
        raise ValueError(f"offer must have {len(issues)} values, got {values.shape}")
    out: dict[str, float | str] = {}
    for i, v in zip(issues, values, strict=True):
        shown = i.display(v)
        out[i.name] = shown if isinstance(shown, str) else round(shown, 4)
    return out


def rest_of_pool(offer: Mapping[str, Any], pool: Sequence[float]) -> dict[str, float]:
    """The bundles game's other side of a split: ``pool`` minus the items ``offer`` counts, by
    issue name (the streamed offer counts the supplier's items; the retailer gets the rest)."""
    return {k: float(p) - float(v) for (k, v), p in zip(offer.items(), pool, strict=True)}


def as_seen_by(offer: Mapping[str, Any] | None, pool: Sequence[float] | None,
               first_seat: bool) -> Mapping[str, Any] | None:
    """An offer as a seat states it: itself, except the bundles game's second seat, who keeps
    the rest of the pool (:func:`rest_of_pool`)."""
    if offer is None or pool is None or first_seat:
        return offer
    return rest_of_pool(offer, pool)


def offer_from_dict(issues: Sequence[IssueView], offer: Mapping[str, Any]) -> np.ndarray:
    """``{issue name: display value}`` (every issue, no other key) as (D,) float32 natural
    units; :class:`FieldError` naming the first missing, unknown or out-of-range issue."""
    if not isinstance(offer, Mapping):
        raise FieldError("offer", "an object of issue values ("
                         + ", ".join(i.name for i in issues) + ")", offer)
    names = [i.name for i in issues]
    unknown = [k for k in offer if k not in names]
    if unknown:
        raise FieldError(f"offer.{unknown[0]}", "one of the issues " + ", ".join(names),
                         unknown[0])
    missing = [n for n in names if n not in offer]
    if missing:
        raise FieldError(f"offer.{missing[0]}", "given: an offer names every issue", None)
    out = []
    for i in issues:
        try:
            out.append(i.natural(offer[i.name]))
        except FieldError as e:
            raise e.renamed(f"offer.{i.name}") from None
    return np.asarray(out, np.float32)
