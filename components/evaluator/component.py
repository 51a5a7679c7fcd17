"""Evaluator: TFX's Evaluator, with a slice gate and a baseline that may be empty.

The baseline input is always connected (to the model served now, a LatestPushedModel artifact)
and is empty until the first push. An empty baseline is dropped before TFMA runs, so the first
run is judged by the value thresholds alone, as TFX's Evaluator judges a run whose baseline
resolved to nothing.

The slice gate: beside TFMA's thresholds (overall accuracy, and its change against the
baseline), no slice of the gated features with at least `min_examples` test reviews may lose
more than `max_accuracy_drop` of accuracy against the baseline on the same slice. The size
bound keeps noise out: a slice of n reviews at accuracy p has a standard error of
sqrt(p (1 - p) / n), at most 0.5 / sqrt(n), so with n >= 1 / max_accuracy_drop^2 the allowed
drop is at least twice that error even for two independent samples, and the two models score
the same reviews. A candidate that fails is not blessed; the blessing's `slice_regressions`
names each failing slice with both accuracies, and the evaluation's `slice_gate.json` holds
the comparison of every gated slice.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components.latest_pushed_model import has_model

_BASELINE_KEY = standard_component_specs.BASELINE_MODEL_KEY
SLICE_GATE_KEY = 'slice_gate'
SLICE_GATE_FILE = 'slice_gate.json'  # In the evaluation artifact: every gated slice compared.
SLICE_REGRESSIONS_PROPERTY = 'slice_regressions'  # Of the blessing: JSON list, [] when none.
_ACCURACY = 'binary_accuracy'
_COUNT = 'example_count'


@dataclasses.dataclass(frozen=True)
class SliceGate:
  """Which slices may not regress against the baseline, and by how much."""
  features: Sequence[str]  # Each value of each feature is a slice.
  max_accuracy_drop: float  # Accuracy a slice may lose against the baseline.
  min_examples: int  # Slices with fewer test reviews are reported, not gated.


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
  PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS,
                SLICE_GATE_KEY: ExecutionParameter(type=str, optional=True)}


def slice_comparisons(evaluation_uri: str, gate: SliceGate) -> List[Dict[str, Any]]:
  """Candidate and baseline accuracy and size of each slice of the gate's features.

  Returns:
    {'slice': 'feature = value', 'examples', 'candidate', 'baseline', 'gated', 'regressed'}
    per slice, in TFMA's order; empty when the evaluation has no baseline.
  """
  comparisons = []
  for slice_metrics in tfma.load_metrics(evaluation_uri):
    keys = slice_metrics.slice_key.single_slice_keys
    if len(keys) != 1 or keys[0].column not in gate.features:
      continue
    values = {(entry.key.model_name, entry.key.name): entry.value.double_value.value
              for entry in slice_metrics.metric_keys_and_values if not entry.key.is_diff}
    if ('baseline', _ACCURACY) not in values:
      return []
    value = getattr(keys[0], keys[0].WhichOneof('kind'))
    examples = int(values[('candidate', _COUNT)])
    drop = values[('baseline', _ACCURACY)] - values[('candidate', _ACCURACY)]
    comparisons.append({
        'slice': f'{keys[0].column} = {value.decode() if isinstance(value, bytes) else value}',
        'examples': examples, 'candidate': values[('candidate', _ACCURACY)],
        'baseline': values[('baseline', _ACCURACY)], 'gated': examples >= gate.min_examples,
        'regressed': examples >= gate.min_examples and drop > gate.max_accuracy_drop})
  return comparisons


def describe(comparison: Dict[str, Any]) -> str:
  """A failing slice in words: which, both accuracies, how many reviews."""
  return (f"{comparison['slice']}: accuracy {comparison['candidate']:.4f} against the served "
          f"model's {comparison['baseline']:.4f} ({comparison['examples']:,} reviews)")


def _refuse(blessing: types.Artifact) -> None:
  """Turns a blessing into a refusal: the marker file and the property the Pusher reads."""
  blessed_file = os.path.join(blessing.uri, constants.BLESSED_FILE_NAME)
  if fileio.exists(blessed_file):
    fileio.remove(blessed_file)
  with fileio.open(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME), 'w') as marker:
    marker.write('')
  blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                   constants.NOT_BLESSED_VALUE)


class Executor(evaluator_executor.Executor):
  """TFX's Evaluator executor, without a baseline that holds no model, plus the slice gate."""

  def Do(self, input_dict, output_dict, exec_properties):
    if not all(has_model(baseline) for baseline in input_dict.get(_BASELINE_KEY, [])):
      input_dict = {key: value for key, value in input_dict.items() if key != _BASELINE_KEY}
    super().Do(input_dict, output_dict, exec_properties)
    gate = exec_properties.get(SLICE_GATE_KEY)
    if gate:
      self._gate_slices(output_dict, SliceGate(**json.loads(gate)))

  @staticmethod
  def _gate_slices(output_dict, gate: SliceGate) -> None:
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    comparisons = slice_comparisons(evaluation.uri, gate)
    with fileio.open(os.path.join(evaluation.uri, SLICE_GATE_FILE), 'w') as out:
      json.dump({'gate': dataclasses.asdict(gate), 'slices': comparisons}, out, indent=1)
    # By slice name: TFMA's order of the slices varies from run to run.
    regressions = sorted((comparison for comparison in comparisons if comparison['regressed']),
                         key=lambda comparison: comparison['slice'])
    blessing.set_string_custom_property(SLICE_REGRESSIONS_PROPERTY,
                                        json.dumps([describe(item) for item in regressions]))
    if regressions:
      _refuse(blessing)


class Evaluator(base_component.BaseComponent):
  """Scores a candidate on a split; gates it on thresholds, per slice, and against a baseline.

  The arguments are TFX Evaluator's, plus `slice_gate`.
  """

  SPEC_CLASS = EvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: types.BaseChannel, example_splits: List[str],
               eval_config: tfma.EvalConfig, slice_gate: Optional[SliceGate] = None):
    super().__init__(spec=EvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        example_splits=json_utils.dumps(example_splits), eval_config=eval_config,
        fairness_indicator_thresholds=json_utils.dumps(None),
        slice_gate=json.dumps(dataclasses.asdict(slice_gate)) if slice_gate else None,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
