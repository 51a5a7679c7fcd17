"""The whole pipeline, every component for real, through local_runner.py on generated data."""

import collections
import json
import os
import subprocess
import sys

import ml_metadata as mlmd
import pytest
from tfx import v1 as tfx

from modules import outputs
from pipeline import configs
from tests.conftest import SMOKE_PIPELINE as PIPELINE_NAME

pytestmark = pytest.mark.slow  # Two pipeline runs in subprocesses.

COMPONENTS = {'ImdbExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator', 'DataGate',
              'Transform', 'PretrainTrainer', 'ClassifierTrainer',
              'LatestPushedModel', 'Evaluator', 'Pusher'}
# Components whose inputs do not change between two runs on the same data.
UPSTREAM = {'ImdbExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator', 'DataGate',
            'Transform', 'PretrainTrainer', 'ClassifierTrainer'}
_PREDICT_SCRIPT = '''
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
reviews = json.loads(sys.argv[2])
predict = model.signatures['predict_text']
first = predict(text=tf.constant(reviews))
again = predict(text=tf.constant(reviews[::-1]))
print(json.dumps({
    'probability': first['probability'].numpy().tolist(),
    'label': first['label'].numpy().tolist(),
    'reversed_probability': again['probability'].numpy().tolist()[::-1],
    'dtypes': [first['probability'].dtype.name, first['label'].dtype.name],
}))
'''


def test_every_component_executed(two_runs):
  _, (stdout, first), _ = two_runs
  states = {run.component_id: run.state for run in first.components}
  assert set(states) == COMPONENTS
  assert set(states.values()) == {'COMPLETE'}
  assert first.example_counts == {'train': first.example_counts['train'],
                                  'eval': 200 - first.example_counts['train'],
                                  'test': 200, 'unsup': 100, 'skipped': 0, 'unknown_movie': 0}
  assert first.test_metrics['example_count'] == 200
  assert first.test_metrics['binary_accuracy'] >= 0.7
  assert first.blessed is True
  assert f'pushed model: {first.pushed_to}' in stdout


def test_classifier_blend_was_fitted_on_the_eval_batches(two_runs):
  _, (_, first), _ = two_runs
  blend_path = os.path.join(first.outputs['ClassifierTrainer']['ModelRun'], outputs.BLEND_FILE)
  with open(blend_path) as blend_file:
    blend = json.load(blend_file)
  fine_tuning = configs.PRESETS['smoke'].fine_tuning
  assert blend['eval_reviews'] == fine_tuning.eval_steps * fine_tuning.batch_size
  assert set(blend['weights']) == {'encoder', 'ngrams'}
  assert blend['eval_accuracy']['blend'] >= 0.7


def test_pushed_model_classifies_raw_text_in_a_fresh_process(two_runs):
  _, (_, first), _ = two_runs
  assert os.path.isfile(os.path.join(first.pushed_to, 'saved_model.pb'))
  reviews = ['A wonderful, superb masterpiece! I loved it.<br />Brilliant.',
             'Awful and boring, a waste. The worst film; I hated it.',
             'superb delightful moving', 'terrible dull painful']
  result = subprocess.run([sys.executable, '-c', _PREDICT_SCRIPT, first.pushed_to,
                           json.dumps(reviews)], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-5000:]
  output = json.loads(result.stdout.strip().splitlines()[-1])
  assert output['dtypes'] == ['float32', 'int64']
  assert output['label'] == [1, 0, 1, 0]
  assert all(0.0 <= p <= 1.0 for p in output['probability'])
  assert output['probability'] == output['reversed_probability']  # Deterministic serving.


def test_second_run_reuses_unchanged_upstream_outputs(two_runs):
  output_dir, _, (_, second) = two_runs
  states = {run.component_id: run.state for run in second.components}
  assert {component for component, state in states.items() if state == 'CACHED'} >= UPSTREAM
  store = mlmd.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata' / PIPELINE_NAME / 'metadata.db')))
  producers = collections.Counter(
      os.path.basename(os.path.dirname(os.path.dirname(model.uri)))
      for model in store.get_artifacts_by_type('Model'))
  # One pretrained, one classifier; the served model is copied in on each run.
  assert producers == {'PretrainTrainer': 1, 'ClassifierTrainer': 1, 'LatestPushedModel': 2}


def test_second_run_compares_against_the_model_the_first_pushed(two_runs):
  """The served model is read from the push destination on every run, never from cache."""
  _, (_, first), (_, second) = two_runs
  assert first.baseline is None
  states = {run.component_id: run.state for run in second.components}
  assert states['LatestPushedModel'] == 'COMPLETE'
  assert second.baseline == first.pushed_to
  assert second.outputs['LatestPushedModel']['Model'] in second.inputs['Evaluator']
  assert second.blessed is True
  assert second.pushed_to == first.pushed_to  # The same model: not pushed again.


_HOSTILE_INPUT_SCRIPT = '''
import json, resource, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
predict = model.signatures['predict_text']
def probabilities(texts):
  return predict(text=tf.constant(texts))['probability'].numpy()
cases = {
    'empty': [''], 'whitespace': [' \\n\\t  '], 'one_megabyte': ['superb film, ' * 80_000],
    'unicode_and_emoji': ['Ótimo filme 😀👍 — très bien ★★★★★ 映画'],
    'html': ['<html><body><p>Great!</p><br/><script>alert(1)</script></body></html>'],
    'mixed_lengths': ['', 'dull', 'a wonderful superb film ' * 200, '😀', 'awful ' * 3],
}
result = {name: probabilities(texts).tolist() for name, texts in cases.items()}
batch = [f'review {i} ' + ('superb ' if i % 2 else 'awful ') * (i % 300) for i in range(10_000)]
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
batched = probabilities(batch)
result['batch_peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result['batch_rss_growth_mb'] = result['batch_peak_rss_mb'] - rss_before / 1024
result['batch_in_range'] = bool(np.all((batched >= 0) & (batched <= 1)))
singles = np.array([probabilities([batch[i]])[0] for i in range(0, 10_000, 997)])
result['max_batch_position_difference'] = float(np.max(np.abs(singles - batched[::997])))
try:
  model.signatures['serving_default'](examples=tf.constant([b'not a tf.Example']))
  result['malformed_example'] = 'accepted'
except tf.errors.InvalidArgumentError as error:
  result['malformed_example'] = type(error).__name__
result['after_malformed'] = probabilities(['still serving']).tolist()
print(json.dumps(result))
'''


def test_pushed_model_survives_hostile_input(two_runs):
  _, (_, first), _ = two_runs
  result = subprocess.run([sys.executable, '-c', _HOSTILE_INPUT_SCRIPT, first.pushed_to],
                          capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-5000:]
  output = json.loads(result.stdout.strip().splitlines()[-1])
  for case in ('empty', 'whitespace', 'one_megabyte', 'unicode_and_emoji', 'html', 'mixed_lengths'):
    assert all(0.0 <= p <= 1.0 for p in output[case]), case
  assert len(output['mixed_lengths']) == 5
  assert abs(output['mixed_lengths'][0] - output['empty'][0]) < 1e-6  # Any batch, any position.
  assert output['batch_in_range']
  assert output['max_batch_position_difference'] < 1e-5
  assert output['batch_rss_growth_mb'] < 512, output['batch_rss_growth_mb']  # Scored in chunks.
  assert output['malformed_example'] == 'InvalidArgumentError'
  assert 0.0 <= output['after_malformed'][0] <= 1.0
