"""What the registry announces; apps above it (the pipeline) subscribe, the registry imports none.

Each is sent inside the transaction that made the change, with ``version_id``; receivers that
enqueue work do it on commit.
"""

from django.dispatch import Signal

# A version's upload was finalized and its sha256 matched: its checkpoint awaits validation.
checkpoint_finalized = Signal()
# A maintainer approved a version for the arena.
arena_approved = Signal()
