"""The model served now, read from the Pusher's destination: the baseline and the warm start."""

from components.latest_pushed_model.component import LatestPushedModel, has_model

__all__ = ['LatestPushedModel', 'has_model']
