"""The data gate on a real run: anomalies found by ExampleValidator stop it before Transform."""

from tests.conftest import run_smoke_pipeline, write_corpus


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
