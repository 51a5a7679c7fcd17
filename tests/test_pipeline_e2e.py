"""The whole pipeline, every component for real, through local_runner.py on generated data."""

import json
import os
import subprocess
import sys

import ml_metadata as mlmd
import pytest
from tfx import v1 as tfx

from pipeline import summary
from tests.conftest import write_corpus

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE_NAME = 'imdb-bert-smoke'
COMPONENTS = {'ImdbExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
              'Transform', 'PretrainTrainer', 'ClassifierTrainer',
              'latest_blessed_model_resolver', 'Evaluator', 'Pusher'}
# Components whose inputs do not change between two runs on the same data.
UPSTREAM = {'ImdbExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
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


def _run_pipeline(corpus_path, output_dir):
  result = subprocess.run(
      [sys.executable, 'local_runner.py', '--preset', 'smoke', '--data', str(corpus_path),
       '--output-dir', str(output_dir)],
      cwd=REPO_ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-5000:]
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata' / PIPELINE_NAME / 'metadata.db'))
  return result.stdout, summary.summarize(metadata, PIPELINE_NAME)


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('e2e')
  corpus_path = write_corpus(root, reviews_per_folder=120)  # The smoke preset reads 100.
  output_dir = root / 'out'
  return output_dir, _run_pipeline(corpus_path, output_dir), _run_pipeline(corpus_path, output_dir)


def test_every_component_executed(two_runs):
  _, (stdout, first), _ = two_runs
  states = {run.component_id: run.state for run in first.components}
  assert set(states) == COMPONENTS
  assert set(states.values()) == {'COMPLETE'}
  assert first.example_counts == {'train': first.example_counts['train'],
                                  'eval': 200 - first.example_counts['train'],
                                  'test': 200, 'unsup': 100, 'skipped': 0}
  assert first.test_metrics['example_count'] == 200
  assert first.test_metrics['binary_accuracy'] >= 0.7
  assert first.blessed is True
  assert f'pushed model: {first.pushed_to}' in stdout


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
  assert len(store.get_artifacts_by_type('Model')) == 2  # One pretrained, one classifier.
