"""Online Elo for a live "recent form" feed: one update per vote, in vote order.

Unlike Bradley–Terry, Elo depends on the order of votes and moves by at most ``k`` points per
vote, so it follows recent form; it has no confidence interval.
"""

from __future__ import annotations

from collections.abc import Iterable

from arena.ratings.votes import BOTH_BAD, MODEL_A, MODEL_B, TIE, WINNER_VALUES


class OnlineElo:
    """Incremental Elo ratings (points). Feed votes with ``update`` / ``update_many``.

    k: points moved by a fully unexpected result; scale, base: P(a beats b) =
    1 / (1 + base ** ((r_b - r_a) / scale)); both_bad: "tie" or "drop"; tie_score: score of a
    tie for each model.
    """

    def __init__(
        self,
        *,
        k: float = 16.0,
        scale: float = 400.0,
        base: float = 10.0,
        init_rating: float = 1000.0,
        both_bad: str = "tie",
        tie_score: float = 0.5,
    ) -> None:
        if k <= 0:
            raise ValueError(f"k={k!r} must be > 0")
        if both_bad not in ("tie", "drop"):
            raise ValueError(f"both_bad={both_bad!r} must be 'tie' or 'drop'")
        self.k, self.scale, self.base = float(k), float(scale), float(base)
        self.init_rating = float(init_rating)
        self.both_bad = both_bad
        self.tie_score = float(tie_score)
        self.ratings: dict[str, float] = {}
        self.games: dict[str, int] = {}
        self.n_votes = 0

    def expected(self, model_a: str, model_b: str) -> float:
        """P(model_a beats model_b) under the current ratings."""
        ra = self.ratings.get(model_a, self.init_rating)
        rb = self.ratings.get(model_b, self.init_rating)
        return 1.0 / (1.0 + self.base ** ((rb - ra) / self.scale))

    def update(self, model_a: str, model_b: str, outcome: str | int) -> None:
        """Apply one vote; outcome is a winner string (LMArena schema) or an outcome code."""
        code = WINNER_VALUES[outcome] if isinstance(outcome, str) else int(outcome)
        if code == BOTH_BAD:
            if self.both_bad == "drop":
                return
            code = TIE
        if code == MODEL_A:
            score = 1.0
        elif code == MODEL_B:
            score = 0.0
        elif code == TIE:
            score = self.tie_score
        else:
            raise ValueError(f"outcome {outcome!r} is not a known outcome")
        expected = self.expected(model_a, model_b)
        change = self.k * (score - expected)
        self.ratings[model_a] = self.ratings.get(model_a, self.init_rating) + change
        self.ratings[model_b] = self.ratings.get(model_b, self.init_rating) - change
        self.games[model_a] = self.games.get(model_a, 0) + 1
        self.games[model_b] = self.games.get(model_b, 0) + 1
        self.n_votes += 1

    def update_many(self, votes: Iterable[tuple[str, str, str | int]]) -> OnlineElo:
        """Apply (model_a, model_b, outcome) votes in order; returns self."""
        for model_a, model_b, outcome in votes:
            self.update(model_a, model_b, outcome)
        return self

    def rating(self, model: str) -> float:
        return self.ratings.get(model, self.init_rating)
