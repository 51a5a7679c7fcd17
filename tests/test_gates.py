"""The data gate on a real run: anomalies found by ExampleValidator stop it before Transform."""

import os

import pytest
from tfx.types import standard_artifacts

from components.data_gate import component as data_gate
from tests.conftest import run_smoke_pipeline, write_corpus


@pytest.mark.slow
def test_out_of_schema_data_stops_the_run_before_transform_naming_split_and_feature(tmp_path):
  corpus = write_corpus(tmp_path, reviews_per_folder=30)
  # A drop rated on a 100-point scale: outside the schema's rating domain [0, 10].
  for review in sorted((corpus / 'test' / 'pos').iterdir())[:5]:
    review.rename(review.with_name(review.name.split('_')[0] + '_95.txt'))
  result, run = run_smoke_pipeline(corpus, tmp_path / 'out')
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'error: the data gate stopped the run' in result.stderr
  assert "span 0, split 'test', feature 'rating': Out-of-range values" in result.stderr
  states = {component.component_id: component.state for component in run.components}
  assert states['ExampleValidator'] == 'COMPLETE'
  assert states['DataGate'] == 'FAILED'
  assert 'Transform' not in states and 'PretrainTrainer' not in states


def test_the_statistics_record_names_what_was_checked_and_forgets_deleted_statistics(tmp_path):
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri, statistics.split_names, statistics.span = str(tmp_path / 'stats'), '["test"]', 4
  os.makedirs(statistics.uri)
  record = str(tmp_path / 'root' / 'checked_statistics.json')  # Its folder does not exist yet.
  assert data_gate._recorded_statistics(record) is None  # pylint: disable=protected-access
  data_gate._record(statistics, record)  # pylint: disable=protected-access
  recorded = data_gate._recorded_statistics(record)  # pylint: disable=protected-access
  assert (recorded.uri, recorded.split_names, recorded.span) == (statistics.uri, '["test"]', 4)
  os.rmdir(statistics.uri)
  assert data_gate._recorded_statistics(record) is None  # pylint: disable=protected-access
