"""What a pipeline run did, read back from ML Metadata and the artifacts it recorded."""

import dataclasses
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import ml_metadata as mlmd
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2

from components import atomic_pusher
from components.evaluator import component as evaluator
from components.imdb_example_gen import executor as example_gen_executor
from components.latest_pushed_model import component as latest_pushed_model
from modules import features

_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_SUMMARY_METRICS = ('binary_accuracy', 'auc', 'precision', 'recall', 'example_count')


@dataclasses.dataclass
class ComponentRun:
  """One component's execution in a pipeline run."""
  component_id: str
  state: str  # COMPLETE, CACHED, FAILED, ...
  seconds: float


@dataclasses.dataclass
class RunSummary:
  """The components of the latest run of a pipeline and its headline results."""
  run_id: str
  components: List[ComponentRun]
  example_counts: Dict[str, int]  # Reviews per split, and `skipped`.
  test_metrics: Dict[str, float]  # The candidate's metrics on the test split.
  blessed: Optional[bool]
  pushed_to: Optional[str]
  # component id → {artifact type name: uri} of its outputs (reused ones for a cached component).
  outputs: Dict[str, Dict[str, str]] = dataclasses.field(default_factory=dict)
  spans: List[int] = dataclasses.field(default_factory=list)  # Span drops read; [0]: one corpus.
  inputs: Dict[str, List[str]] = dataclasses.field(default_factory=dict)  # Component → input uris.
  # The pushed version that was served when the run began: the Evaluator's baseline and, when
  # retraining, the classifier fine-tuning started from. None before the first push.
  baseline: Optional[str] = None
  # The slices that refused the candidate, each with both accuracies (see components.evaluator).
  slice_regressions: List[str] = dataclasses.field(default_factory=list)

  def format(self) -> str:
    """The summary as the text a user reads at the end of a run."""
    lines = [f'Pipeline run {self.run_id}:']
    lines += [f'  {run.component_id:<32} {run.state:<9} {run.seconds:8.1f} s'
              for run in self.components]
    if self.spans != [0]:
      lines.append('  spans: ' + ', '.join(map(str, self.spans)))
    lines.append('  reviews: ' + ', '.join(f'{k} {v}' for k, v in self.example_counts.items()))
    lines.append('  test: ' + ', '.join(f'{k} {v:.4f}' for k, v in self.test_metrics.items()))
    lines.append(f'  baseline: {self.baseline or "none (no model served yet)"}')
    lines.append(f'  blessed: {self.blessed}')
    lines += [f'  slice regressed: {regression}' for regression in self.slice_regressions]
    lines.append(f'  pushed model: {self.pushed_to or "none (not blessed)"}')
    return '\n'.join(lines)


def summarize(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str) -> RunSummary:
  """Summarizes the latest run of `pipeline_name` in the ML Metadata store."""
  store = mlmd.MetadataStore(connection_config)
  runs = pipeline_runs(store, pipeline_name)
  if not runs:
    raise ValueError(f'ML Metadata holds no run of pipeline {pipeline_name!r}')
  run = max(runs, key=lambda context: context.create_time_since_epoch)
  executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
  summary = RunSummary(run.name, [], {}, {}, None, None)
  for execution in executions:
    node_id = component_id(store, execution.id)
    summary.components.append(ComponentRun(
        node_id,
        metadata_store_pb2.Execution.State.Name(execution.last_known_state),
        execution_seconds(execution)))
    summary.inputs[node_id] = [
        artifact.uri for artifact in _artifacts(store, execution.id, _INPUT_EVENTS)]
    for type_name, artifact in typed_outputs(store, execution.id):
      summary.outputs.setdefault(node_id, {})[type_name] = artifact.uri
      _read_artifact(type_name, artifact, summary)
  return summary


def pipeline_runs(store: mlmd.MetadataStore,
                  pipeline_name: str) -> List[metadata_store_pb2.Context]:
  """The `pipeline_run` contexts of a pipeline, none when it never ran."""
  pipeline = store.get_context_by_type_and_name('pipeline', pipeline_name)
  return [context for context in store.get_children_contexts_by_context(pipeline.id)
          if context.type == 'pipeline_run'] if pipeline else []


def execution_seconds(execution: metadata_store_pb2.Execution) -> float:
  """Wall time of an execution, from its registration to its last update."""
  return (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000


def component_id(store: mlmd.MetadataStore, execution_id: int) -> str:
  """The node id of an execution, from its `node` context `<pipeline>.<node id>`."""
  for context in store.get_contexts_by_execution(execution_id):
    if context.type == 'node':
      return context.name.split('.', 1)[1]
  return f'execution {execution_id}'


def _artifacts(store: mlmd.MetadataStore, execution_id: int,
               event_types: Tuple[int, ...]) -> List[metadata_store_pb2.Artifact]:
  """The artifacts an execution read (input events) or wrote (output events)."""
  artifact_ids = [event.artifact_id for event in store.get_events_by_execution_ids([execution_id])
                  if event.type in event_types]
  return store.get_artifacts_by_id(artifact_ids)


def typed_outputs(store: mlmd.MetadataStore,
                  execution_id: int) -> List[Tuple[str, metadata_store_pb2.Artifact]]:
  """(type name, artifact) of what an execution wrote, or reused when it was cached."""
  return [(store.get_artifact_types_by_id([artifact.type_id])[0].name, artifact)
          for artifact in _artifacts(store, execution_id, _OUTPUT_EVENTS)]


def _read_artifact(type_name: str, artifact: metadata_store_pb2.Artifact,
                   summary: RunSummary) -> None:
  """Fills in the summary fields that an output artifact of the run holds."""
  properties = artifact.custom_properties
  if type_name == 'Examples' and 'num_skipped' in properties:
    summary.example_counts = {name: properties[f'num_{name}'].int_value
                              for name in example_gen_executor.REPORTED_COUNTS}
    # Examples written before spans were recorded came from one corpus: span 0.
    spans = properties[example_gen_executor.SPANS_PROPERTY].string_value
    summary.spans = [int(span) for span in spans.split(',')] if spans else [0]
  elif type_name == 'Model' and latest_pushed_model.PUSHED_DESTINATION_PROPERTY in properties:
    summary.baseline = properties[latest_pushed_model.PUSHED_DESTINATION_PROPERTY].string_value
  elif type_name == 'ModelEvaluation':
    summary.test_metrics = candidate_metrics(artifact.uri)
  elif type_name == 'ModelBlessing':
    summary.blessed = properties['blessed'].int_value == 1
    regressions = properties.get(evaluator.SLICE_REGRESSIONS_PROPERTY)
    summary.slice_regressions = json.loads(regressions.string_value) if regressions else []
  elif type_name == 'PushedModel' and properties['pushed'].int_value == 1:
    summary.pushed_to = properties['pushed_destination'].string_value


def newest_pushed_model(serving_dir: str) -> Optional[str]:
  """The newest version folder the Pusher wrote under `serving_dir` (what a model server
  serves), or None when nothing was pushed there."""
  version = atomic_pusher.newest_version(serving_dir)
  return os.path.join(serving_dir, version) if version else None


def candidate_metrics_by_slice(evaluation_uri: str) -> List[Tuple[Any, Dict[str, float]]]:
  """(slice key, {metric: value}) of the candidate model for each slice of an Evaluator output.

  The overall slice's key has no `single_slice_keys`.
  """
  return [(slice_metrics.slice_key,
           {entry.key.name: entry.value.double_value.value
            for entry in slice_metrics.metric_keys_and_values
            if not entry.key.is_diff and entry.key.model_name in ('', 'candidate')})
          for slice_metrics in tfma.load_metrics(evaluation_uri)]


def candidate_metrics(evaluation_uri: str) -> Dict[str, float]:
  """The candidate model's overall metrics from an Evaluator output."""
  for slice_key, metrics in candidate_metrics_by_slice(evaluation_uri):
    if not slice_key.single_slice_keys:
      return {name: value for name, value in metrics.items() if name in _SUMMARY_METRICS}
  return {}


def reviews(examples_uri: str, split: str) -> Iterator[Tuple[str, int]]:
  """(text, label) of each review in one split of an ExampleGen output."""
  files = tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*'))
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    example = tf.train.Example.FromString(record.numpy()).features.feature
    yield (example[features.TEXT_KEY].bytes_list.value[0].decode(),
           example[features.LABEL_KEY].int64_list.value[0])
