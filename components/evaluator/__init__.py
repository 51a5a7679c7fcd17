"""TFX's Evaluator with a slice gate, comparing against the served model when there is one."""

from components.evaluator.component import Evaluator, SliceGate

__all__ = ['Evaluator', 'SliceGate']
