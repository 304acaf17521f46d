"""Pure numpy/scipy rating core (no Django): votes, Bradley–Terry with CIs, online Elo."""

from arena.ratings.bradley_terry import (
    BradleyTerryFit,
    BradleyTerryOptions,
    fit_bradley_terry,
    rank_intervals,
)
from arena.ratings.elo import OnlineElo
from arena.ratings.votes import AggregatedVotes, VoteFormatError, read_votes

__all__ = [
    "AggregatedVotes",
    "BradleyTerryFit",
    "BradleyTerryOptions",
    "OnlineElo",
    "VoteFormatError",
    "fit_bradley_terry",
    "rank_intervals",
    "read_votes",
]
