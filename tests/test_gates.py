"""The data gate on a real run: anomalies found by ExampleValidator stop it before Transform."""

import os
import subprocess
import sys

from tfx import v1 as tfx

from pipeline import summary
from tests.conftest import write_corpus

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE_NAME = 'imdb-bert-smoke'


def _run(corpus, output_dir):
  """Runs the smoke pipeline; returns the process result and the run summary."""
  result = subprocess.run(
      [sys.executable, 'local_runner.py', '--preset', 'smoke', '--data', str(corpus),
       '--output-dir', str(output_dir)], cwd=REPO_ROOT, capture_output=True, text=True)
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata' / PIPELINE_NAME / 'metadata.db'))
  return result, summary.summarize(metadata, PIPELINE_NAME)


def test_out_of_schema_data_stops_the_run_before_transform_naming_split_and_feature(tmp_path):
  corpus = write_corpus(tmp_path, reviews_per_folder=30)
  # A drop rated on a 100-point scale: outside the schema's rating domain [0, 10].
  for review in sorted((corpus / 'test' / 'pos').iterdir())[:5]:
    review.rename(review.with_name(review.name.split('_')[0] + '_95.txt'))
  result, run = _run(corpus, tmp_path / 'out')
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'error: the data gate stopped the run' in result.stderr
  assert "span 0, split 'test', feature 'rating': Out-of-range values" in result.stderr
  states = {component.component_id: component.state for component in run.components}
  assert states['ExampleValidator'] == 'COMPLETE'
  assert states['DataGate'] == 'FAILED'
  assert 'Transform' not in states and 'PretrainTrainer' not in states
