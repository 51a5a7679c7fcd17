"""A Pusher whose new model version appears in the serving directory whole, or not at all."""

from components.atomic_pusher.component import (STAGING_DIR, AtomicPusher, newest_version,
                                                read_push_log)

__all__ = ['STAGING_DIR', 'AtomicPusher', 'newest_version', 'read_push_log']
