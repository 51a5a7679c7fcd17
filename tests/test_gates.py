"""The data gate: anomalies found by ExampleValidator stop a real run before Transform."""

import os
import subprocess
import sys

from tfx import v1 as tfx

from pipeline import summary
from tests.conftest import write_corpus

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_out_of_schema_data_stops_the_run_before_transform_naming_split_and_feature(tmp_path):
  corpus = write_corpus(tmp_path, reviews_per_folder=30)
  # A drop rated on a 100-point scale: outside the schema's rating domain [0, 10].
  for review in sorted((corpus / 'test' / 'pos').iterdir())[:5]:
    review.rename(review.with_name(review.name.split('_')[0] + '_95.txt'))
  output_dir = tmp_path / 'out'
  result = subprocess.run(
      [sys.executable, 'local_runner.py', '--preset', 'smoke', '--data', str(corpus),
       '--output-dir', str(output_dir)], cwd=REPO_ROOT, capture_output=True, text=True)
  assert result.returncode == 1, result.stderr[-3000:]
  error = result.stderr.strip().splitlines()
  assert "error: the data gate stopped the run" in result.stderr
  assert any("span 0, split 'test', feature 'rating'" in line for line in error), error[-5:]
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata' / 'imdb-bert-smoke' / 'metadata.db'))
  states = {run.component_id: run.state for run in summary.summarize(metadata, 'imdb-bert-smoke').components}
  assert states['ExampleValidator'] == 'COMPLETE'
  assert states['DataGate'] == 'FAILED'
  assert 'Transform' not in states and 'PretrainTrainer' not in states
