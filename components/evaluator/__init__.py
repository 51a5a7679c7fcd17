"""TFX's Evaluator, comparing against the served model when there is one."""

from components.evaluator.component import Evaluator

__all__ = ['Evaluator']
