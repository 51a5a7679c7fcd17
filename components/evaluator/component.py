"""Evaluator: TFX's Evaluator whose baseline is a LatestPushedModel artifact, possibly empty.

The baseline input is always connected (to the model served now), and is empty until the first
push. An empty baseline is dropped before TFMA runs, so the first run is judged by the value
thresholds alone, as TFX's Evaluator judges a run whose baseline resolved to nothing.
"""

from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from components.latest_pushed_model import has_model

_BASELINE_KEY = standard_component_specs.BASELINE_MODEL_KEY


class Executor(evaluator_executor.Executor):
  """TFX's Evaluator executor, without a baseline that holds no model."""

  def Do(self, input_dict, output_dict, exec_properties):
    if not all(has_model(baseline) for baseline in input_dict.get(_BASELINE_KEY, [])):
      input_dict = {key: value for key, value in input_dict.items() if key != _BASELINE_KEY}
    super().Do(input_dict, output_dict, exec_properties)


class Evaluator(tfx.components.Evaluator):
  """Scores a candidate model; gates it on thresholds and against a baseline that may be empty."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
