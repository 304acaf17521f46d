"""Pure numpy/scipy rating core (no Django): votes, Bradley–Terry with CIs, online Elo."""

from arena.ratings.bradley_terry import (
    BradleyTerryFit,
    BradleyTerryOptions,
    fit_bradley_terry,
    rank_intervals,
)
from arena.ratings.elo import OnlineElo
from arena.ratings.raters import (
    PersonalRatings,
    RaterCheck,
    check_raters,
    personal_ratings,
    sprt_bounds,
)
from arena.ratings.robustness import RankFlip, rank_robustness, votes_to_flip
from arena.ratings.style import (
    StyleControlFit,
    StyleOptions,
    StyleVote,
    StyleVotes,
    fit_style_control,
)
from arena.ratings.ties import DavidsonFit, DavidsonOptions, fit_davidson
from arena.ratings.votes import AggregatedVotes, VoteFormatError, read_votes

__all__ = [
    "AggregatedVotes",
    "BradleyTerryFit",
    "BradleyTerryOptions",
    "DavidsonFit",
    "DavidsonOptions",
    "OnlineElo",
    "PersonalRatings",
    "RaterCheck",
    "RankFlip",
    "StyleControlFit",
    "StyleOptions",
    "StyleVote",
    "StyleVotes",
    "VoteFormatError",
    "check_raters",
    "fit_bradley_terry",
    "fit_davidson",
    "fit_style_control",
    "personal_ratings",
    "rank_intervals",
    "rank_robustness",
    "read_votes",
    "sprt_bounds",
    "votes_to_flip",
]
