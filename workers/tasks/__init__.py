"""Celery tasks (thin: parse, call one service, report). One submodule per area; each task has an
explicit name `workers.tasks.<name>`, and names starting with `gpu_` route to the gpu queue.

Keep torch and other heavy imports inside the task functions so workers start fast.
"""

from workers.tasks.generation import (  # noqa: F401
    gpu_generate_samples,
    gpu_refill_battle_pool,
    gpu_steps_sweep,
)
from workers.tasks.health import ping
from workers.tasks.housekeeping import prune_rate_counters  # noqa: F401
from workers.tasks.judging import (  # noqa: F401
    gpu_judge_version,
    judge_battles,
    judge_sampled_battles,
    judge_version,
)
from workers.tasks.metrics import gpu_compute_metrics  # noqa: F401
from workers.tasks.pipeline import (  # noqa: F401
    pipeline_failed,
    pipeline_join_arena,
    pipeline_launch,
    pipeline_set_status,
)
from workers.tasks.rater_checks import check_raters  # noqa: F401
from workers.tasks.ratings import (  # noqa: F401
    refresh_rating_snapshots,
    retire_departed_samples,
)
from workers.tasks.training import train_model  # noqa: F401
from workers.tasks.validation import validate_checkpoint  # noqa: F401

__all__ = ["ping"]
