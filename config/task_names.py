"""Every Celery task's name, in one place: tasks are registered under these, and everything
that sends, routes or schedules a task by name imports it from here (no bare task strings).

Names starting with ``workers.tasks.gpu_`` route to the gpu queue (CELERY_TASK_ROUTES).
"""

from __future__ import annotations

PREFIX = "workers.tasks."

CHECK_RATERS = PREFIX + "check_raters"
GPU_COMPUTE_METRICS = PREFIX + "gpu_compute_metrics"
GPU_GENERATE_SAMPLES = PREFIX + "gpu_generate_samples"
GPU_JUDGE_VERSION = PREFIX + "gpu_judge_version"
GPU_REFILL_BATTLE_POOL = PREFIX + "gpu_refill_battle_pool"
GPU_STEPS_SWEEP = PREFIX + "gpu_steps_sweep"
JUDGE_BATTLES = PREFIX + "judge_battles"
JUDGE_SAMPLED_BATTLES = PREFIX + "judge_sampled_battles"
JUDGE_VERSION = PREFIX + "judge_version"
PING = PREFIX + "ping"
PIPELINE_FAILED = PREFIX + "pipeline_failed"
PIPELINE_JOIN_ARENA = PREFIX + "pipeline_join_arena"
PIPELINE_LAUNCH = PREFIX + "pipeline_launch"
PIPELINE_SET_STATUS = PREFIX + "pipeline_set_status"
PRUNE_RATE_COUNTERS = PREFIX + "prune_rate_counters"
REFRESH_RATING_SNAPSHOTS = PREFIX + "refresh_rating_snapshots"
RETIRE_DEPARTED_SAMPLES = PREFIX + "retire_departed_samples"
TRAIN_MODEL = PREFIX + "train_model"
VALIDATE_CHECKPOINT = PREFIX + "validate_checkpoint"

ALL = tuple(value for key, value in sorted(globals().items()) if key.isupper() and key != "PREFIX")
