"""Scheduled retraining on span drops: rolling window, warm start, and the model gate, on real runs."""

import os

import pytest
from tfx.utils import path_utils

from modules import outputs
from tests.conftest import SMOKE_PIPELINE as PIPELINE_NAME, run_smoke_pipeline, write_drop

pytestmark = pytest.mark.slow  # Five pipeline runs in subprocesses.

SPAN_WINDOW = 2


def _retrain(drops, output_dir):
  result, run = run_smoke_pipeline(drops, output_dir, '--span-window', str(SPAN_WINDOW))
  assert result.returncode == 0, result.stderr[-5000:]
  return result.stdout, run


def _serving_dir(run, component_id):
  """The folder of the model that a Trainer of `run` wrote."""
  return path_utils.serving_model_path(run.outputs[component_id]['Model'])


def _pushed_versions(output_dir):
  """The version folders a model server would load."""
  serving = output_dir / 'serving_model' / PIPELINE_NAME
  return sorted(name for name in os.listdir(serving) if name.isdigit()) if serving.exists() else []


def test_drops_train_on_a_rolling_window_push_only_blessed_models_and_stop_on_skew(tmp_path):
  drops, output_dir = tmp_path / 'drops', tmp_path / 'out'
  drops.mkdir()

  write_drop(drops, 1, tmp_path)
  stdout, first = _retrain(drops, output_dir)
  assert first.spans == [1]
  assert 'spans: 1' in stdout
  assert first.example_counts['test'] == 200  # The newest drop's test set only.
  assert first.blessed is True
  assert len(_pushed_versions(output_dir)) == 1

  write_drop(drops, 2, tmp_path)
  _, second = _retrain(drops, output_dir)
  assert second.spans == [1, 2]
  assert second.example_counts['test'] == 200
  assert second.example_counts['train'] + second.example_counts['eval'] == 2 * 200
  assert second.blessed is True
  assert len(_pushed_versions(output_dir)) == 2
  # The model the first run pushed was the second's baseline and the start of its fine-tuning,
  # so pretraining was skipped.
  assert first.baseline is None
  assert second.baseline == first.pushed_to
  served = second.outputs['LatestPushedModel']['Model']
  assert served in second.inputs['Evaluator']
  assert served in second.inputs['ClassifierTrainer']
  assert served in second.inputs['PretrainTrainer']
  assert outputs.ENCODER_FILE in os.listdir(_serving_dir(first, 'PretrainTrainer'))
  assert os.listdir(_serving_dir(second, 'PretrainTrainer')) == [outputs.PRETRAINING_SKIPPED_FILE]

  # Drop 3 has every training label flipped: trained with drop 2 it may or may not pass the gate,
  # but a version is pushed exactly when it is blessed.
  write_drop(drops, 3, tmp_path, invert_training_labels=True)
  _, third = _retrain(drops, output_dir)
  assert third.spans == [2, 3]
  assert len(_pushed_versions(output_dir)) == 2 + int(third.blessed)
  pushed_before = _pushed_versions(output_dir)

  # Drop 4 is flipped too: the window now teaches the opposite sentiment, and the gate holds.
  write_drop(drops, 4, tmp_path, invert_training_labels=True)
  _, fourth = _retrain(drops, output_dir)
  assert fourth.spans == [3, 4]
  assert fourth.blessed is False
  assert fourth.pushed_to is None
  assert fourth.test_metrics['binary_accuracy'] < second.test_metrics['binary_accuracy']
  assert _pushed_versions(output_dir) == pushed_before

  # Drop 5's test reviews are almost all positive: its labels are far from drop 4's, and the
  # data gate stops the run before anything trains.
  write_drop(drops, 5, tmp_path, few_negative_tests=True)
  result, fifth = run_smoke_pipeline(drops, output_dir, '--span-window', str(SPAN_WINDOW))
  assert result.returncode == 1, result.stderr[-3000:]
  assert "span 5 against span 4, split 'test', feature 'label': High approximate Jensen-Shannon" \
      in result.stderr
  states = {component.component_id: component.state for component in fifth.components}
  assert states['DataGate'] == 'FAILED'
  assert 'Transform' not in states
  assert _pushed_versions(output_dir) == pushed_before
