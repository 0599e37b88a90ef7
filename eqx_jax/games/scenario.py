"""Multi-issue negotiation scenarios: the file format, its validation, the priors, and the
conversion to arrays.

A scenario is a small YAML (or JSON) file in ``configs/scenarios/`` (see ``docs/games.md``,
section "multi-issue")::

    name: integrative-4
    parties: [seller, buyer]          # names of agents 0, 1, ... (optional; 2 to 8 parties)
    issues:
      - {name: price, type: continuous, low: 0, high: 100}
      - {name: delivery, type: discrete, values: 5}
    utilities:
      supplier:                        # agent 0 ("supplier" or parties[0])
        value_functions: [increasing, "peaked:2"]
        weights: [[0.5, 0.7], 0.3]     # per issue: a fixed number or a prior [low, high]
        reservation: [0.1, 0.3]        # a fixed number or a prior [low, high]
      retailer: {...}                  # agent 1 ("retailer" or parties[1])
      logistics: {...}                 # agent 2 onwards: keyed by its name in parties
    settings: {max_rounds: 10}         # default game settings (optional)

The two-party games (``multi-issue``) take a scenario of two parties; the group game
(``group``, :mod:`eqx_jax.games.group`) one of 2 to 8 parties, all over the same issues.

Utilities are linear-additive: ``u_i(x) = sum_k w_ik f_ik(x_k)`` with the per-issue value
functions ``f_ik`` in [0, 1] (``increasing`` 0 at the issue's low end and 1 at its high end,
``decreasing`` the reverse, both linear; ``peaked:p`` for a discrete issue,
``1 - |v - p| / max(p, n - 1 - p)`` over the value indices v = 0..n-1) and weights summing
to 1, so ``u_i`` lies in [0, 1] and reaches both ends.

Priors (drawn at every reset): each raw weight ``w_ik ~ U[low_ik, high_ik]``, independently,
then ``w_i <- w_i / sum_k w_ik``; the reservation value ``r_i ~ U[low_i, high_i]``. A fixed
number is the prior ``[x, x]``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from eqx_jax.checks import FieldError, check_choice, check_number

MIN_ISSUES, MAX_ISSUES = 2, 8
MIN_VALUES, MAX_VALUES = 2, 100
MIN_PARTIES, MAX_PARTIES = 2, 8
ISSUE_TYPES = ("continuous", "discrete")
AGENT_KEYS = ("supplier", "retailer")
#: Where :func:`load_scenario` looks for a scenario given by name.
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "configs" / "scenarios"


@dataclasses.dataclass(frozen=True)
class Issue:
    """One issue. ``low``/``high``: the natural range of a continuous issue; a discrete issue
    has ``num_values`` values, offered by index 0..num_values-1 (``low`` 0, ``high`` n-1)."""

    name: str
    kind: str  # "continuous" | "discrete"
    low: float
    high: float
    num_values: int  # 0 for a continuous issue
    labels: tuple[Any, ...] = ()  # optional display values of a discrete issue's indices

    @property
    def discrete(self) -> bool:
        return self.kind == "discrete"


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A validated scenario (plain Python and NumPy; build it with :func:`load_scenario` or
    :func:`scenario_from_dict`).

    N parties (2 to 8; ``parties`` their names, agent i is ``parties[i]``).
    ``value_functions[i][k]``: agent i's value function of issue k ("increasing",
    "decreasing" or ("peaked", p)). ``weight_low``/``weight_high``: (N, K) raw weight priors;
    ``reservation_low``/``reservation_high``: (N,) reservation priors, utility units in [0, 1].
    ``settings``: default game settings of the scenario (``make_multi_issue_params`` overrides).
    """

    name: str
    parties: tuple[str, ...]
    issues: tuple[Issue, ...]
    value_functions: tuple[tuple[Any, ...], ...]
    weight_low: np.ndarray
    weight_high: np.ndarray
    reservation_low: np.ndarray
    reservation_high: np.ndarray
    settings: dict[str, Any]
    description: str = ""

    @property
    def num_issues(self) -> int:
        return len(self.issues)

    @property
    def num_parties(self) -> int:
        return len(self.parties)

    def first_parties(self, n: int) -> Scenario:
        """This scenario with only its first ``n`` parties (``--agents N``); ``FieldError``
        naming ``agents`` unless 2 <= n <= num_parties."""
        check_number("agents", n, MIN_PARTIES, self.num_parties, integer=True)
        n = int(n)
        return dataclasses.replace(
            self, parties=self.parties[:n], value_functions=self.value_functions[:n],
            weight_low=self.weight_low[:n], weight_high=self.weight_high[:n],
            reservation_low=self.reservation_low[:n], reservation_high=self.reservation_high[:n])

    def require_parties(self, n: int, game: str) -> Scenario:
        """This scenario, checked to have exactly ``n`` parties (``FieldError`` naming
        ``parties`` otherwise: the two-party games refuse a group scenario)."""
        if self.num_parties != n:
            raise FieldError("parties", f"{n} parties for the {game} game (a scenario of "
                             "3 or more parties is played with --game group)", list(self.parties))
        return self

    @property
    def complete_information(self) -> bool:
        """Whether every weight and both reservation values are fixed (priors of zero width)."""
        return bool(np.all(self.weight_low == self.weight_high)
                    and np.all(self.reservation_low == self.reservation_high))

    def fixed(self, weights: np.ndarray | None = None,
              reservation: np.ndarray | None = None) -> Scenario:
        """This scenario with fixed raw weights (N, K) and reservation values (N,) (default: the
        prior means), i.e. its complete-information version."""
        w = (self.weight_low + self.weight_high) / 2 if weights is None else np.asarray(weights)
        r = ((self.reservation_low + self.reservation_high) / 2 if reservation is None
             else np.asarray(reservation))
        w, r = np.asarray(w, float), np.asarray(r, float)
        return dataclasses.replace(self, weight_low=w, weight_high=w, reservation_low=r,
                                   reservation_high=r)


def value_function_table(vf: Any, issue: Issue) -> np.ndarray:
    """The value function at the issue's table points, float64 in [0, 1]: the n values of a
    discrete issue (by index), or the two ends (low, high) of a continuous one (linear between)."""
    n = issue.num_values if issue.discrete else 2
    v = np.arange(n, dtype=float)
    if vf == "increasing":
        return v / (n - 1)
    if vf == "decreasing":
        return 1.0 - v / (n - 1)
    _, p = vf
    return 1.0 - np.abs(v - p) / max(p, n - 1 - p)


def value_tables(scenario: Scenario) -> np.ndarray:
    """(N, K, V) float64: every agent's value function of every issue at its table points
    (``value_function_table``), padded by repeating the last point to V = the most points."""
    width = max(i.num_values if i.discrete else 2 for i in scenario.issues)
    out = np.zeros((scenario.num_parties, scenario.num_issues, width))
    for a in range(scenario.num_parties):
        for k, issue in enumerate(scenario.issues):
            t = value_function_table(scenario.value_functions[a][k], issue)
            out[a, k] = np.concatenate([t, np.full(width - t.size, t[-1])])
    return out


def normalized_weights(raw: np.ndarray) -> np.ndarray:
    """Raw weights (..., K) -> weights summing to 1 over the last axis."""
    raw = np.asarray(raw, float)
    return raw / raw.sum(axis=-1, keepdims=True)


def sample_weights_and_reservations(scenario: Scenario, rng: np.random.Generator, n: int
                                    ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws from the priors (NumPy): weights (n, N, K) summing to 1 per agent, and
    reservation values (n, N)."""
    size = (n, scenario.num_parties)
    raw = rng.uniform(scenario.weight_low, scenario.weight_high, size + (scenario.num_issues,))
    res = rng.uniform(scenario.reservation_low, scenario.reservation_high, size)
    return normalized_weights(raw), res


# ----------------------------------------------------------------------------- parsing
def _require(data: Any, key: str, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise FieldError(f"{where}.{key}" if where else key, "given", None)
    return data[key]


def _parse_issue(raw: Any, k: int) -> Issue:
    where = f"issues[{k}]"
    if not isinstance(raw, dict):
        raise FieldError(where, "a mapping with name and type", raw)
    name = raw.get("name", f"issue{k}")
    if not isinstance(name, str) or not name:
        raise FieldError(f"{where}.name", "a non-empty string", name)
    kind = check_choice(f"{where}.type", _require(raw, "type", where), ISSUE_TYPES)
    if kind == "discrete":
        n = check_number(f"{where}.values", _require(raw, "values", where), MIN_VALUES,
                         MAX_VALUES, integer=True)
        labels = raw.get("labels", [])
        if not isinstance(labels, list) or len(labels) not in (0, n):
            raise FieldError(f"{where}.labels", f"a list of {n} labels (one per value)", labels)
        return Issue(name, kind, 0.0, float(n - 1), int(n), tuple(labels))
    low = check_number(f"{where}.low", _require(raw, "low", where), -1e9, 1e9)
    high = check_number(f"{where}.high", _require(raw, "high", where), low, 1e9, low_open=True)
    return Issue(name, kind, float(low), float(high), 0)


def _parse_value_function(raw: Any, issue: Issue, where: str) -> Any:
    if raw in ("increasing", "decreasing"):
        return raw
    if isinstance(raw, str) and raw.startswith("peaked:") and issue.discrete:
        try:
            p = int(raw.split(":", 1)[1])
        except ValueError:
            p = raw
        check_number(f"{where} peak", p, 0, issue.num_values - 1, integer=True)
        return ("peaked", p)
    allowed = "increasing, decreasing" + (", peaked:<index>" if issue.discrete else "")
    raise FieldError(where, f"one of {allowed}", raw)


def _parse_range(raw: Any, where: str, low: float, high: float) -> tuple[float, float]:
    """A fixed number x ([x, x]) or a prior [lo, hi] with low <= lo <= hi <= high."""
    if isinstance(raw, list | tuple):
        if len(raw) != 2:
            raise FieldError(where, "a number or a pair [low, high]", raw)
        lo = check_number(f"{where}[0]", raw[0], low, high)
        hi = check_number(f"{where}[1]", raw[1], lo, high)
        return float(lo), float(hi)
    x = check_number(where, raw, low, high)
    return float(x), float(x)


def _parse_agent(raw: Any, agent: str, issues: tuple[Issue, ...]):
    where = f"utilities.{agent}"
    k_num = len(issues)
    vfs = _require(raw, "value_functions", where)
    weights = _require(raw, "weights", where)
    for field, seq in (("value_functions", vfs), ("weights", weights)):
        if not isinstance(seq, list) or len(seq) != k_num:
            raise FieldError(f"{where}.{field}", f"a list of {k_num} entries (one per issue)",
                             seq)
    vf = tuple(_parse_value_function(v, issue, f"{where}.value_functions[{k}]")
               for k, (v, issue) in enumerate(zip(vfs, issues, strict=True)))
    w = [_parse_range(x, f"{where}.weights[{k}]", 0.0, 1e6) for k, x in enumerate(weights)]
    if sum(hi for _, hi in w) <= 0:
        raise FieldError(f"{where}.weights", "not all zero", weights)
    res = _parse_range(_require(raw, "reservation", where), f"{where}.reservation", 0.0, 1.0)
    return vf, np.array([lo for lo, _ in w]), np.array([hi for _, hi in w]), res


def scenario_from_dict(data: Any, name: str = "scenario") -> Scenario:
    """A validated :class:`Scenario` from parsed YAML/JSON data.

    Raises :class:`~eqx_jax.checks.FieldError` (a ``ValueError``) naming the field path, e.g.
    ``issues[2].values must be an integer in [2, 100], got 1``."""
    if not isinstance(data, dict):
        raise FieldError("scenario", "a mapping", data)
    issues_raw = _require(data, "issues", "")
    if not isinstance(issues_raw, list) or not MIN_ISSUES <= len(issues_raw) <= MAX_ISSUES:
        raise FieldError("issues", f"a list of {MIN_ISSUES} to {MAX_ISSUES} issues", issues_raw)
    issues = tuple(_parse_issue(x, k) for k, x in enumerate(issues_raw))
    names = [i.name for i in issues]
    if len(set(names)) != len(names):
        raise FieldError("issues", "issues with distinct names", names)
    parties = data.get("parties", list(AGENT_KEYS))
    if (not isinstance(parties, list) or not MIN_PARTIES <= len(parties) <= MAX_PARTIES
            or not all(isinstance(p, str) and p for p in parties)
            or len(set(parties)) != len(parties)):
        raise FieldError("parties", f"a list of {MIN_PARTIES} to {MAX_PARTIES} distinct names",
                         parties)
    utilities = _require(data, "utilities", "")
    agents = []
    for i, party in enumerate(parties):
        # The first two parties may also be keyed by the two-party games' role names.
        key = AGENT_KEYS[i] if i < len(AGENT_KEYS) else party
        found = key if isinstance(utilities, dict) and key in utilities else party
        agents.append(_parse_agent(_require(utilities, found, "utilities"), found, issues))
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise FieldError("settings", "a mapping of game settings", settings)
    description = data.get("description", "")
    return Scenario(
        name=str(data.get("name", name)), parties=tuple(parties), issues=issues,
        value_functions=tuple(a[0] for a in agents),
        weight_low=np.stack([a[1] for a in agents]),
        weight_high=np.stack([a[2] for a in agents]),
        reservation_low=np.array([a[3][0] for a in agents]),
        reservation_high=np.array([a[3][1] for a in agents]),
        settings=dict(settings), description=str(description))


def scenario_path(path_or_name: str | Path) -> Path:
    """The file of a scenario given by path, or by name (``configs/scenarios/<name>.yaml``)."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    for ext in (".yaml", ".yml", ".json"):
        cand = SCENARIO_DIR / f"{path_or_name}{ext}"
        if cand.is_file():
            return cand
    known = sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml")) if SCENARIO_DIR.is_dir() else []
    raise FieldError("scenario", f"a scenario file or one of {known}", str(path_or_name))


def load_scenario(path_or_name: str | Path | Scenario) -> Scenario:
    """Load and validate a scenario file (YAML or JSON), by path or by name.

    Raises ``ValueError`` naming the field path on a bad file."""
    if isinstance(path_or_name, Scenario):
        return path_or_name
    path = scenario_path(path_or_name)
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        import yaml  # the file format of configs/

        data = yaml.safe_load(text)
    return scenario_from_dict(data, name=path.stem)


def list_scenarios() -> list[str]:
    """The names of the scenarios shipped in ``configs/scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
