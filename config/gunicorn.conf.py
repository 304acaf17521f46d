"""gunicorn settings for production: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

gthread workers that take a connection only when one of their threads is free
(worker_connections = threads, no keep-alive): behind a reverse proxy every request arrives on a
connection of its own, and the kernel hands it to an idle worker instead of queueing it behind
a busy worker's threads. Measured in benchmarks/votes.py (README, "Benchmarks").
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Two processes per core, two threads each: enough to cover database waits without the GIL
# contention of more threads (benchmarks/votes.py on 2 cores: 4 x 2 beat 4 x 4, 3 x 3 and 2 x 4).
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
worker_connections = threads
keepalive = 0
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # "-" for stdout


def post_worker_init(worker):
    """Load every view, then freeze the objects loaded so far: the garbage collector's full
    passes then skip them (about 30 ms each otherwise, a tail-latency spike under load)."""
    import gc

    from django.urls import get_resolver

    if not get_resolver().url_patterns:  # resolving them imports every view module
        raise RuntimeError("config.urls defines no URL patterns")
    gc.freeze()
