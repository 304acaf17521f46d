"""Django settings, read once from the environment (12-factor).

Embedded default (no servers): SQLite and a filesystem Celery broker under ``var/``.
Production: ``DATABASE_URL`` (PostgreSQL), ``CELERY_BROKER_URL`` (Redis or RabbitMQ).
"""

from __future__ import annotations

import os
from pathlib import Path

from kombu import Exchange, Queue

from config import task_names
from config.env import (
    cache_from_url,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_number_map,
    env_path,
    env_str,
    fail,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Development is the default so that manage.py works on a fresh checkout; production sets DEBUG=0
# (then SECRET_KEY is required and `check --deploy` passes).
DEBUG = env_bool("DEBUG", default=True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        fail("SECRET_KEY", "must be set when DEBUG is off (production refuses a default key)")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_results",
    "django_celery_beat",
    "models_registry",
    "evaluation",
    "arena",
    "pipeline",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------
DATABASES = {"default": database_from_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if "sqlite" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    # A file (not :memory:) so that worker processes started by tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and sessions -------------------------------------------------------------------
# CACHE_URL=redis://... gives every web and worker process one cache: sessions are read from it
# (written through to the database), and the ratings-refresh debounce and page caches are shared.
# Without it each process has its own memory cache and sessions stay in the database.
CACHES = {
    "default": cache_from_url("CACHE_URL"),
    # This process only: small, hot, read-mostly data (the arena pool) where a round trip to a
    # shared cache would cost more than a few seconds of staleness.
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
}
SHARED_CACHE = "locmem" not in CACHES["default"]["BACKEND"]
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if SHARED_CACHE
    else "django.contrib.sessions.backends.db"
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and media ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {
        "BACKEND": env_str("DEFAULT_FILE_STORAGE", "django.core.files.storage.FileSystemStorage")
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- security (production) ----------------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = ["security.W021"] if not env_bool("SECURE_HSTS_PRELOAD", False) else []

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "models_registry.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Generative Vision Arena API",
    "DESCRIPTION": "Submit image and video generators, follow their evaluation, read leaderboards.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Celery -------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redelivery of unacknowledged tasks after a worker dies (Redis): longer than any task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600)
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3900)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("gpu", Exchange("gpu"), routing_key="gpu"),
    Queue("training", Exchange("training"), routing_key="training"),
)
# Tasks that run a generator or a backbone go to GPU workers; training the demo's own models
# goes to its own worker (`make run` starts one), so it never holds up the evaluation pipeline;
# everything else to `default`.
CELERY_TASK_ROUTES = {
    task_names.PREFIX + "gpu_*": {"queue": "gpu", "routing_key": "gpu"},
    task_names.PREFIX + "train_*": {"queue": "training", "routing_key": "training"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
RATINGS_REFRESH_SECONDS = env_float("RATINGS_REFRESH_SECONDS", 60.0)
CELERY_BEAT_SCHEDULE = {
    "refresh-rating-snapshots": {
        "task": task_names.REFRESH_RATING_SNAPSHOTS,
        "schedule": RATINGS_REFRESH_SECONDS,
    },
    "retire-departed-samples": {  # arena.anonymity: versions that left the arena
        "task": task_names.RETIRE_DEPARTED_SAMPLES,
        "schedule": RATINGS_REFRESH_SECONDS,
    },
    "prune-rate-counters": {
        "task": task_names.PRUNE_RATE_COUNTERS,
        "schedule": env_float("RATE_COUNTERS_PRUNE_SECONDS", 600.0),
    },
    "check-raters": {
        "task": task_names.CHECK_RATERS,
        "schedule": env_float("ARENA_RATER_CHECK_SECONDS", 3600.0),
    },
}

# --- weights for metric backbones, judges and generators (local paths; empty = unavailable) --
INCEPTION_WEIGHTS_PATH = env_path("INCEPTION_WEIGHTS_PATH")
CLIP_MODEL_NAME = env_str("CLIP_MODEL_NAME", "ViT-B-32")
CLIP_WEIGHTS_PATH = env_path("CLIP_WEIGHTS_PATH")
I3D_WEIGHTS_PATH = env_path("I3D_WEIGHTS_PATH")
WEIGHTS_ALLOW_CUSTOM = env_bool("WEIGHTS_ALLOW_CUSTOM", False)
JUDGE_API_BASE_URL = env_str("JUDGE_API_BASE_URL")
JUDGE_API_MODEL = env_str("JUDGE_API_MODEL")
JUDGE_API_KEY = env_str("JUDGE_API_KEY")
JUDGE_LOCAL_VLM_PATH = env_path("JUDGE_LOCAL_VLM_PATH")

# --- platform limits ----------------------------------------------------------------------
UPLOAD_USER_QUOTA_BYTES = env_int("UPLOAD_USER_QUOTA_BYTES", 20 * 1024**3)
UPLOAD_MAX_CHECKPOINT_BYTES = env_int("UPLOAD_MAX_CHECKPOINT_BYTES", 10 * 1024**3)
ARENA_AUTO_APPROVE = env_bool("ARENA_AUTO_APPROVE", DEBUG)
# A steps sweep (quality per NFE, evaluation.steps_sweep) of every version when it publishes,
# scored with STEPS_SWEEP_METRIC; `make run` turns it on so the demo's model pages show curves.
STEPS_SWEEP_ON_PUBLISH = env_bool("STEPS_SWEEP_ON_PUBLISH", False)
STEPS_SWEEP_METRIC = env_str("STEPS_SWEEP_METRIC", "prompt_agreement")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # diffusers and httpx log a line per model load or request.
    "loggers": {
        **{
            name: {"level": env_str("LIBRARY_LOG_LEVEL", "WARNING")}
            for name in ("diffusers", "httpx", "urllib3")
        },
        # "No hostname was supplied" on every connection of the embedded filesystem broker.
        "kombu.connection": {"level": "ERROR"},
    },
}

# --- app-specific settings (each block owned by one area) ---------------------------------
# [registry settings]
# Checkpoint archive limits (validation rejects anything beyond them before unpacking).
# Local copies of checkpoints when the media storage is remote (S3-compatible): one per sha256.
CHECKPOINT_CACHE_DIR = Path(env_str("CHECKPOINT_CACHE_DIR", str(VAR_DIR / "checkpoint-cache")))
CHECKPOINT_MAX_FILES = env_int("CHECKPOINT_MAX_FILES", 1000)
CHECKPOINT_MAX_UNPACKED_BYTES = env_int("CHECKPOINT_MAX_UNPACKED_BYTES", 20 * 1024**3)
CHECKPOINT_MAX_COMPRESSION_RATIO = env_float("CHECKPOINT_MAX_COMPRESSION_RATIO", 100.0)
CHECKPOINT_MAX_JSON_BYTES = env_int("CHECKPOINT_MAX_JSON_BYTES", 64 * 1024**2)
SAFETENSORS_MAX_HEADER_BYTES = env_int("SAFETENSORS_MAX_HEADER_BYTES", 100 * 1024**2)
# Chunked upload: one PUT carries at most this many bytes; the body is streamed, never buffered.
UPLOAD_CHUNK_MAX_BYTES = env_int("UPLOAD_CHUNK_MAX_BYTES", 64 * 1024**2)
UPLOAD_STREAM_BUFFER_BYTES = env_int("UPLOAD_STREAM_BUFFER_BYTES", 1024**2)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "VersionStatusEnum": "models_registry.models.VersionStatus",
        "UploadStatusEnum": "models_registry.models.UploadStatus",
        "MetricStatusEnum": "evaluation.models.MetricStatus",
    }
)
# [generators settings]
# Prompts per generation task: a version's prompts are split into a group of gpu tasks.
GENERATION_PROMPTS_PER_TASK = env_int("GENERATION_PROMPTS_PER_TASK", 8)
# Device for sampling: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:1", ...
GENERATOR_DEVICE = env_str("GENERATOR_DEVICE", "auto")
GENERATOR_BATCH_SIZE = env_int("GENERATOR_BATCH_SIZE", 16)  # halved automatically on OOM
# Two disjoint pools per version (evaluation.pools): the battle pool (seeds 0..n-1, served only
# in battles) and the showcase (seeds 1,000,000 + 0..m-1: galleries, sample pages, the API).
GENERATOR_SEEDS_PER_PROMPT = env_int("GENERATOR_SEEDS_PER_PROMPT", 2)  # battle seeds 0..n-1
GENERATOR_SHOWCASE_SEEDS_PER_PROMPT = env_int("GENERATOR_SHOWCASE_SEEDS_PER_PROMPT", 1)
# A public sample within this mean absolute difference (0-255, on 16x16 thumbnails) of a live
# battle sample of its version is withheld (evaluation.features.fingerprint).
LOOKALIKE_THRESHOLD = env_float("LOOKALIKE_THRESHOLD", 8.0)
SAMPLE_VIDEO_FPS = env_int("SAMPLE_VIDEO_FPS", 8)
REFERENCE_MODELS_DIR = Path(env_str("REFERENCE_MODELS_DIR", str(VAR_DIR / "reference_models")))
REFERENCE_MODELS_OWNER = env_str("REFERENCE_MODELS_OWNER", "reference-models")
# Generation cost: $ per device-hour by device (models_registry.generators.cost). A GPU takes the
# key whose words appear in its name ("A100" for "NVIDIA A100-SXM4-80GB"), else "cuda"; a CPU
# worker "cpu". On-demand cloud list prices of 2025; override or add keys with a JSON object,
# e.g. GENERATION_PRICES='{"H100": 1.99, "cpu": 0.05}'.
GENERATION_PRICES = env_number_map(
    "GENERATION_PRICES",
    {
        "cpu": 0.10,
        "cuda": 2.00,
        "H200": 3.50,
        "H100": 2.50,
        "A100": 1.50,
        "L40S": 1.00,
        "L40": 0.90,
        "L4": 0.70,
        "A10G": 1.00,
        "A10": 0.75,
        "T4": 0.35,
        "V100": 0.90,
        "RTX 4090": 0.70,
        "RTX 3090": 0.40,
    },
)
# Torch CPU threads of a training task (0: torch's default). The demo trains in the background
# beside the evaluation worker, so half the cores each keeps both moving.
TRAINING_THREADS = env_int("TRAINING_THREADS", max(1, (os.cpu_count() or 2) // 2))
# [metrics settings]
# Accept weights whose sha256 differs from the published one (results still show the hash).
INCEPTION_WEIGHTS_CUSTOM = env_bool("INCEPTION_WEIGHTS_CUSTOM", WEIGHTS_ALLOW_CUSTOM)
CLIP_WEIGHTS_CUSTOM = env_bool("CLIP_WEIGHTS_CUSTOM", WEIGHTS_ALLOW_CUSTOM)
I3D_WEIGHTS_CUSTOM = env_bool("I3D_WEIGHTS_CUSTOM", WEIGHTS_ALLOW_CUSTOM)
METRICS_DEVICE = env_str("METRICS_DEVICE", "auto")  # "auto" (cuda when present), "cpu", "cuda:0"
METRICS_BATCH_SIZE = env_int("METRICS_BATCH_SIZE", 32)  # images (or videos) per backbone call
# The synthetic domain's prompt checker (prompt_agreement, the "checker" judge): the platform's
# own small classifier, fitted on renders and saved here on first use when the file is missing.
PROMPT_CHECKER_WEIGHTS_PATH = env_path("PROMPT_CHECKER_WEIGHTS_PATH") or (
    VAR_DIR / "metrics" / "prompt-checker.safetensors"
)
# Metrics per task; unset = the metric catalogue's defaults for the task (every media metric
# that applies to it). Names are checked against the catalogue by a system check (evaluation).
METRICS_BY_TASK = {
    "text-to-image": env_list("METRICS_TEXT_TO_IMAGE", None),
    "text-to-video": env_list("METRICS_TEXT_TO_VIDEO", None),
    "image-edit": env_list("METRICS_IMAGE_EDIT", None),
}
# Real reference media per task: a folder of PNG/JPEG (images) or MP4 (videos); empty = the
# synthetic benchmark renders (METRICS_SYNTHETIC_REFERENCE_SIZE items, fixed seed).
METRICS_REFERENCE_DIRS = {
    "text-to-image": env_path("METRICS_REFERENCE_IMAGES_DIR"),
    "text-to-video": env_path("METRICS_REFERENCE_VIDEOS_DIR"),
}
METRICS_SYNTHETIC_REFERENCE_SIZE = env_int("METRICS_SYNTHETIC_REFERENCE_SIZE", 512)
METRICS_SYNTHETIC_REFERENCE_SEED = env_int("METRICS_SYNTHETIC_REFERENCE_SEED", 7)
METRICS_SYNTHETIC_RESOLUTION = env_int("METRICS_SYNTHETIC_RESOLUTION", 32)  # pixels
METRICS_FVD_FRAMES = env_int("METRICS_FVD_FRAMES", 16)  # StyleGAN-V protocol: 16 frames
METRICS_KID_SUBSETS = env_int("METRICS_KID_SUBSETS", 100)
METRICS_KID_SUBSET_SIZE = env_int("METRICS_KID_SUBSET_SIZE", 1000)
METRICS_BOOTSTRAP = env_int("METRICS_BOOTSTRAP", 100)  # CMMD bootstrap replicates
METRICS_JACKKNIFE_GROUPS = env_int("METRICS_JACKKNIFE_GROUPS", 10)  # FD confidence interval
# [provenance settings] (evaluation.provenance): published samples are signed with C2PA by this
# PEM chain (end entity first) and key; unset, the self-signed demo chain under C2PA_DEMO_DIR
# signs, which only C2PA_DEMO_SIGNER allows (default: DEBUG). Production without both refuses
# to publish with an ImproperlyConfigured naming these settings.
C2PA_SIGNING_CERT = env_path("C2PA_SIGNING_CERT")
C2PA_SIGNING_KEY = env_path("C2PA_SIGNING_KEY")
C2PA_DEMO_SIGNER = env_bool("C2PA_DEMO_SIGNER", default=DEBUG)
C2PA_DEMO_DIR = Path(env_str("C2PA_DEMO_DIR", str(VAR_DIR / "c2pa-demo")))
# Bit accuracy (of 64) from which a watermark counts as detected; chosen from the measured
# false-positive rate on unwatermarked images (README, "Provenance").
WATERMARK_THRESHOLD = env_float("WATERMARK_THRESHOLD", 0.875)
VERIFY_MAX_BYTES = env_int("VERIFY_MAX_BYTES", 20 * 1024 * 1024)  # /verify uploads
VERIFY_MAX_PIXELS = env_int("VERIFY_MAX_PIXELS", 40_000_000)
VERIFY_PER_MINUTE_PER_IP = env_int("VERIFY_PER_MINUTE_PER_IP", 30)  # 0: no limit
PROVENANCE_CHECK_SAMPLES = env_int("PROVENANCE_CHECK_SAMPLES", 4)  # per version, for the column
# [arena settings]
ARENA_MIN_VIEW_SECONDS = env_float("ARENA_MIN_VIEW_SECONDS", 2.0)  # before a vote is accepted
ARENA_BATTLE_TTL_SECONDS = env_int("ARENA_BATTLE_TTL_SECONDS", 30 * 60)  # then votes are refused
ARENA_VOTES_PER_MINUTE_PER_RATER = env_int("ARENA_VOTES_PER_MINUTE_PER_RATER", 20)
ARENA_VOTES_PER_MINUTE_PER_IP = env_int("ARENA_VOTES_PER_MINUTE_PER_IP", 120)
ARENA_BATTLES_PER_MINUTE_PER_RATER = env_int("ARENA_BATTLES_PER_MINUTE_PER_RATER", 40)
ARENA_BATTLES_PER_MINUTE_PER_IP = env_int("ARENA_BATTLES_PER_MINUTE_PER_IP", 240)
# Votes one rater may cast in any 24 h (a RateCounter with a day window); 0 = no cap.
ARENA_VOTES_PER_DAY_PER_RATER = env_int("ARENA_VOTES_PER_DAY_PER_RATER", 500)
# Samples per battle: 2 = pairwise (today's arena); 3-4 = K-wise (rank them, or pick the best).
# The arena page's "Compare 4" link asks for ?k=4 whatever the default.
ARENA_KWISE_K = env_int("ARENA_KWISE_K", 2)
ARENA_KWISE_MAX_K = env_int("ARENA_KWISE_MAX_K", 4)
if not 2 <= ARENA_KWISE_K <= ARENA_KWISE_MAX_K <= 8:
    fail("ARENA_KWISE_K", f"need 2 <= ARENA_KWISE_K <= ARENA_KWISE_MAX_K <= 8, got {ARENA_KWISE_K}")
# Rater outlier test (Wald SPRT against the consensus, arena.rater_checks): error rates, the
# alternative ("random" or "adversarial") and how often beat runs it.
ARENA_RATER_CHECK_ALPHA = env_float("ARENA_RATER_CHECK_ALPHA", 0.01)  # P(flag | honest)
ARENA_RATER_CHECK_BETA = env_float("ARENA_RATER_CHECK_BETA", 0.1)  # P(clear | random)
ARENA_RATER_CHECK_ALTERNATIVE = env_str("ARENA_RATER_CHECK_ALTERNATIVE", "random")
ARENA_RATER_CHECK_SECONDS = env_float("ARENA_RATER_CHECK_SECONDS", 3600.0)
# Vote-count rules (arena.rating_snapshots.vote_count_excluded_raters): a human rater served at
# least ARENA_VOTE_RATE_MIN_BATTLES battles counts only while voting on ARENA_MIN_VOTE_RATE of
# them, and only from ARENA_RATER_MIN_VOTES votes on (1: every rater counts).
ARENA_VOTE_RATE_MIN_BATTLES = env_int("ARENA_VOTE_RATE_MIN_BATTLES", 5)  # B <= M: see rigging.py
ARENA_MIN_VOTE_RATE = env_float("ARENA_MIN_VOTE_RATE", 0.5)
ARENA_RATER_MIN_VOTES = env_int("ARENA_RATER_MIN_VOTES", 5)
# Targeted-voting test (arena.ratings.targeting), run with the outlier test: a rater or an
# address whose votes favour one model beyond the consensus (Bonferroni p < alpha) is excluded.
ARENA_TARGETED_CHECK_ALPHA = env_float("ARENA_TARGETED_CHECK_ALPHA", 0.01)  # P(flag | honest)
ARENA_TARGETED_CHECK_MIN_VOTES = env_int("ARENA_TARGETED_CHECK_MIN_VOTES", 1)  # per model
ARENA_PERSONAL_MIN_VOTES = env_int("ARENA_PERSONAL_MIN_VOTES", 30)  # for a personal leaderboard
# Number of X-Forwarded-For hops added by trusted reverse proxies (0: use REMOTE_ADDR).
ARENA_TRUSTED_PROXY_HOPS = env_int("ARENA_TRUSTED_PROXY_HOPS", 0)
ARENA_PROVISIONAL_VOTES = env_int("ARENA_PROVISIONAL_VOTES", 30)  # fewer: marked provisional
ARENA_SAMPLING_FLOOR = env_float("ARENA_SAMPLING_FLOOR", 0.05)  # share of uniform pair picks
ARENA_NEW_MODEL_BOOST = env_float("ARENA_NEW_MODEL_BOOST", 2.0)  # extra weight, fades with votes
# Anonymity (arena.anonymity): a battle sample retires (never served again, then public) once
# this many human raters have seen its model at the reveal, or when its version leaves the
# arena. A version whose live battle pool falls below ARENA_POOL_REFILL_BELOW of its prompts x
# seeds gets GENERATOR_SEEDS_PER_PROMPT fresh battle seeds, up to ARENA_POOL_MAX_SEEDS.
ARENA_RETIRE_AFTER_REVEALS = env_int("ARENA_RETIRE_AFTER_REVEALS", 5)
# Also keep from a rater what anyone from their address has seen (a new cookie does not reset
# what they remember); turn off where many honest raters share one address (a campus NAT).
ARENA_EXCLUDE_SEEN_BY_ADDRESS = env_bool("ARENA_EXCLUDE_SEEN_BY_ADDRESS", True)
ARENA_POOL_REFILL_BELOW = env_float("ARENA_POOL_REFILL_BELOW", 0.5)
ARENA_POOL_MAX_SEEDS = env_int("ARENA_POOL_MAX_SEEDS", 64)
if ARENA_RETIRE_AFTER_REVEALS < 1:
    fail("ARENA_RETIRE_AFTER_REVEALS", "must be at least 1")
if ARENA_POOL_MAX_SEEDS > 1_000_000:
    fail("ARENA_POOL_MAX_SEEDS", "battle seeds must stay below the showcase's (1,000,000)")
ARENA_POOL_CACHE_SECONDS = env_float("ARENA_POOL_CACHE_SECONDS", 10.0)  # eligible-sample cache
ARENA_REFRESH_DEBOUNCE_SECONDS = env_float("ARENA_REFRESH_DEBOUNCE_SECONDS", 15.0)
# Anonymous visitors' leaderboards are cached by fingerprint (never stale); this bounds memory.
ARENA_LEADERBOARD_CACHE_SECONDS = env_int("ARENA_LEADERBOARD_CACHE_SECONDS", 600)
CSRF_FAILURE_VIEW = "arena.views.csrf_failure"  # refusals in words (JSON for JSON clients)
# [ratings settings]
RATINGS_CI = env_str("RATINGS_CI", "sandwich")  # snapshot intervals: "sandwich" or "bootstrap"
if RATINGS_CI not in ("sandwich", "bootstrap"):
    fail("RATINGS_CI", f"expected 'sandwich' or 'bootstrap', got {RATINGS_CI!r}")
RATINGS_BOOTSTRAP_ROUNDS = env_int("RATINGS_BOOTSTRAP_ROUNDS", 100)
RATINGS_SIGNIFICANCE = env_float("RATINGS_SIGNIFICANCE", 0.05)  # 0.05: 95% intervals
RATINGS_SCALE = env_float("RATINGS_SCALE", 400.0)  # rating points per factor BASE of odds
RATINGS_BASE = env_float("RATINGS_BASE", 10.0)
RATINGS_INIT_RATING = env_float("RATINGS_INIT_RATING", 1000.0)  # mean rating
RATINGS_TIE_WEIGHT = env_float("RATINGS_TIE_WEIGHT", 0.5)  # a tie = this much of a win for each
RATINGS_BOTH_BAD = env_str("RATINGS_BOTH_BAD", "tie")  # "tie" or "drop"
if RATINGS_BOTH_BAD not in ("tie", "drop"):
    fail("RATINGS_BOTH_BAD", f"expected 'tie' or 'drop', got {RATINGS_BOTH_BAD!r}")
RATINGS_REWEIGHT = env_bool("RATINGS_REWEIGHT", False)  # weight votes 1 / max(pair votes, 50)
RATINGS_PRIOR_SD = env_float("RATINGS_PRIOR_SD", 400.0)  # points; used only when no finite MLE
RATINGS_ELO_K = env_float("RATINGS_ELO_K", 16.0)  # online Elo step (points per surprise)
RATINGS_ELO_WINDOW = env_int("RATINGS_ELO_WINDOW", 5000)  # recent-form Elo over the last N votes
RATINGS_SNAPSHOT_KEEP = env_int("RATINGS_SNAPSHOT_KEEP", 2000)  # per board; 0 keeps all
RATINGS_AGGREGATE_WORK_MEM = env_str("RATINGS_AGGREGATE_WORK_MEM", "256MB")  # PostgreSQL GROUP BY
# Ties: "half" (a tie is half a win for each side) or "davidson" (ties an outcome of their own,
# with a fitted tie parameter nu); "both bad" votes follow RATINGS_BOTH_BAD either way.
RATINGS_TIE_MODEL = env_str("RATINGS_TIE_MODEL", "half")
if RATINGS_TIE_MODEL not in ("half", "davidson"):
    fail("RATINGS_TIE_MODEL", f"expected 'half' or 'davidson', got {RATINGS_TIE_MODEL!r}")
# Style control of the human all-prompts board: which Sample.covariates keys enter the fit
# (empty: no style control), and the fewest votes with all of them needed to fit.
RATINGS_STYLE_COVARIATES = env_list(
    "RATINGS_STYLE_COVARIATES",
    ["brightness", "saturation", "aspect_ratio", "generation_seconds", "width"],
)
RATINGS_STYLE_MIN_VOTES = env_int("RATINGS_STYLE_MIN_VOTES", 50)
# Rank robustness of human boards: fewest votes whose removal flips adjacent models, searched up
# to MAX_REMOVALS votes per pair, for boards of at most MAX_MODELS models (0: off).
RATINGS_ROBUSTNESS_MAX_REMOVALS = env_int("RATINGS_ROBUSTNESS_MAX_REMOVALS", 1000)
RATINGS_ROBUSTNESS_MAX_MODELS = env_int("RATINGS_ROBUSTNESS_MAX_MODELS", 50)
# [judge settings]
JUDGE_BACKEND = env_str("JUDGE_BACKEND", "")  # "api", "local" or "" (whichever is configured)
if JUDGE_BACKEND not in ("", "api", "local"):
    fail("JUDGE_BACKEND", f"expected 'api', 'local' or empty, got {JUDGE_BACKEND!r}")
JUDGE_NAME = env_str("JUDGE_NAME", "")  # shown on the leaderboard; default: the model / folder name
JUDGE_API_TIMEOUT_SECONDS = env_float("JUDGE_API_TIMEOUT_SECONDS", 120.0)  # per HTTP request
JUDGE_API_MAX_RETRIES = env_int("JUDGE_API_MAX_RETRIES", 4)  # on 429, 5xx, timeouts
JUDGE_API_BACKOFF_SECONDS = env_float("JUDGE_API_BACKOFF_SECONDS", 1.0)  # doubles per retry
JUDGE_API_BACKOFF_MAX_SECONDS = env_float("JUDGE_API_BACKOFF_MAX_SECONDS", 60.0)
JUDGE_API_CONCURRENCY = env_int("JUDGE_API_CONCURRENCY", 4)  # requests in flight at once
JUDGE_API_MAX_TOKENS = env_int("JUDGE_API_MAX_TOKENS", 512)
JUDGE_VIDEO_FRAMES = env_int("JUDGE_VIDEO_FRAMES", 8)  # frames sampled evenly from each video
JUDGE_LOCAL_DEVICE = env_str("JUDGE_LOCAL_DEVICE", "auto")  # "auto", "cpu", "cuda", "cuda:1"
# With a judge configured, beat sends new human battles to it for pairwise verdicts.
JUDGE_BATTLES_SECONDS = env_float("JUDGE_BATTLES_SECONDS", 600.0)
if JUDGE_API_BASE_URL or JUDGE_LOCAL_VLM_PATH:
    for _task in ("text-to-image", "text-to-video"):
        CELERY_BEAT_SCHEDULE[f"judge-battles-{_task}"] = {
            "task": task_names.JUDGE_BATTLES,
            "schedule": JUDGE_BATTLES_SECONDS,
            "args": [_task],
        }
# The synthetic checker judges pairs it draws itself (no human battle needed), so the demo's
# boards have a judge rating column at start: this many new pairs per task every
# JUDGE_CHECKER_SECONDS (0 turns it off; off by default outside DEBUG).
JUDGE_CHECKER_PAIRS = env_int("JUDGE_CHECKER_PAIRS", 150 if DEBUG else 0)
JUDGE_CHECKER_SECONDS = env_float("JUDGE_CHECKER_SECONDS", 120.0)
if JUDGE_CHECKER_PAIRS > 0:
    for _task in ("text-to-image", "text-to-video", "image-edit"):
        CELERY_BEAT_SCHEDULE[f"judge-checker-{_task}"] = {
            "task": task_names.JUDGE_SAMPLED_BATTLES,
            "schedule": JUDGE_CHECKER_SECONDS,
            "args": [_task, "checker", JUDGE_CHECKER_PAIRS],
        }
