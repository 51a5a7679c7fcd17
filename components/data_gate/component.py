"""DataGate: fails the run when ExampleValidator reported anomalies in any split.

ExampleValidator records anomalies but never stops a run. Placed before Transform, this gate
turns them into a failed component whose error names the span, the split and the feature, so
nothing downstream (Transform, the Trainers, the Pusher) runs on bad data.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

# What ExampleValidator writes in each split's folder.
_ANOMALIES_FILE = 'SchemaDiff.pb'


class DataAnomaliesError(RuntimeError):
  """ExampleValidator found anomalies: the data must be fixed, or the schema updated."""


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


def _describe(info: anomalies_pb2.AnomalyInfo) -> str:
  return '; '.join(f'{reason.short_description}: {reason.description}' for reason in info.reason) \
      or info.description


@tfx.dsl.components.component
def DataGate(anomalies: tfx.dsl.components.InputArtifact[
    tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
  """Raises DataAnomaliesError listing every anomaly; passes when there is none."""
  lines = _anomaly_lines(anomalies)
  if lines:
    raise DataAnomaliesError(
        f'ExampleValidator found anomalies in {anomalies.uri}; fix the data or '
        'update pipeline/schema/schema.pbtxt:\n  ' + '\n  '.join(lines))
