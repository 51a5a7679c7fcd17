"""DataGate: fails the run on anomalies in any split, or on a large skew from the previous span.

ExampleValidator records anomalies but never stops a run. Placed before Transform, this gate
turns them into a failed component whose error names the span, the split and the feature, so
nothing downstream (Transform, the Trainers, the Pusher) runs on bad data. Given a statistics
record, it also compares the newest span's `test` split (which holds that span alone) with the
one the previous run checked, using the drift comparators of the curated schema, and then
records this run's statistics there for the next run: a file, so the previous run's statistics
are found the same way under every orchestrator.
"""

import json
import os
from typing import List, Optional

import tensorflow_data_validation as tfdv
from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

# What ExampleValidator writes in each split's folder.
_ANOMALIES_FILE = 'SchemaDiff.pb'
# The split that holds the newest span alone (ImdbExampleGen), compared span to span.
SKEW_SPLIT = 'test'
# Anomaly types of the drift comparators.
_SKEW_TYPES = (anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
               anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
               anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH)


class DataAnomaliesError(RuntimeError):
  """Anomalies, or a large skew between spans: the data must be fixed, or the schema updated."""


def _anomaly_lines(anomalies: tfx.types.standard_artifacts.ExampleAnomalies) -> List[str]:
  """One line per anomalous feature of each split: span, split, feature and what is wrong."""
  lines = []
  for split in artifact_utils.decode_split_names(anomalies.split_names):
    path = os.path.join(artifact_utils.get_split_uri([anomalies], split), _ANOMALIES_FILE)
    report = anomalies_pb2.Anomalies()
    report.ParseFromString(io_utils.read_bytes_file(path))
    where = f'span {anomalies.span}, split {split!r}'
    for feature, info in sorted(report.anomaly_info.items()):
      lines.append(f'{where}, feature {feature!r}: {_describe(info)}')
    if report.HasField('dataset_anomaly_info'):
      lines.append(f'{where}, whole dataset: {_describe(report.dataset_anomaly_info)}')
  return lines


def _skew_lines(statistics: tfx.types.standard_artifacts.ExampleStatistics,
                previous: Optional[tfx.types.standard_artifacts.ExampleStatistics],
                schema: tfx.types.standard_artifacts.Schema) -> List[str]:
  """One line per feature whose distribution moved past its drift comparator's threshold.

  Only a previous run that read an earlier span is compared with (a rerun of the same span,
  e.g. after a failure, has nothing newer to compare).
  """
  if previous is None or previous.span >= statistics.span:
    return []
  current_stats, previous_stats = (
      stats_artifact_utils.load_statistics(artifact, SKEW_SPLIT).proto()
      for artifact in (statistics, previous))
  report = tfdv.validate_statistics(
      current_stats, io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri)),
      previous_statistics=previous_stats)
  where = f'span {statistics.span} against span {previous.span}, split {SKEW_SPLIT!r}'
  return [f'{where}, feature {feature!r}: {_describe(info)}'
          for feature, info in sorted(report.anomaly_info.items())
          if any(reason.type in _SKEW_TYPES for reason in info.reason)]


def _recorded_statistics(
    record_path: str) -> Optional[tfx.types.standard_artifacts.ExampleStatistics]:
  """The statistics that the record at `record_path` names, or None without a record (or
  when those statistics were deleted since: then the skew goes unchecked, with a warning)."""
  if not fileio.exists(record_path):
    return None
  with fileio.open(record_path) as record_file:
    record = json.load(record_file)
  if not fileio.exists(record['uri']):
    logging.warning('The statistics that the previous run checked, %s, are gone: the skew '
                    'between spans is not checked this run.', record['uri'])
    return None
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri, statistics.split_names, statistics.span = (
      record['uri'], record['split_names'], record['span'])
  return statistics


def _record(statistics: tfx.types.standard_artifacts.ExampleStatistics, record_path: str) -> None:
  """Replaces the record at `record_path` with `statistics`, in one rename."""
  fileio.makedirs(os.path.dirname(record_path))
  with fileio.open(record_path + '.tmp', 'w') as record_file:
    json.dump({'uri': statistics.uri, 'split_names': statistics.split_names,
               'span': statistics.span}, record_file)
  fileio.rename(record_path + '.tmp', record_path, overwrite=True)


def _describe(info: anomalies_pb2.AnomalyInfo) -> str:
  return '; '.join(f'{reason.short_description}: {reason.description}' for reason in info.reason) \
      or info.description


@tfx.dsl.components.component
def DataGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    statistics_record: tfx.dsl.components.Parameter[str] = None,
) -> None:
  """Raises DataAnomaliesError listing every anomaly and skew; passes when there is none.

  Args:
    anomalies: ExampleValidator's findings.
    statistics: This run's statistics.
    schema: The curated schema, whose drift comparators bound the skew between spans.
    statistics_record: A JSON file naming the statistics that the previous run checked
      (scheduled retraining); None checks no skew. This run's statistics replace them there,
      whether they pass or not: a rerun of the same span (say, after fixing it) then has
      nothing newer to compare with.
  """
  lines = _anomaly_lines(anomalies)
  if statistics_record:
    lines += _skew_lines(statistics, _recorded_statistics(statistics_record), schema)
    _record(statistics, statistics_record)
  if lines:
    raise DataAnomaliesError(
        f'The data failed its checks (anomalies in {anomalies.uri}, or skew from the previous '
        'span); fix the data or update pipeline/schema/schema.pbtxt:\n  ' + '\n  '.join(lines))
