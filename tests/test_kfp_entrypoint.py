"""pipeline/kfp_entrypoint.py: each adaptation to what the open-source KFP backend hands a task."""

import json
import os

import pytest
import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

from pipeline import kfp_entrypoint, object_store
from tests import kfp_launcher

_MODEL_SCHEMA = 'title: tfx.Model\ntype: object\n'
_EXAMPLES_SCHEMA = 'title: tfx.Examples\ntype: object\n'


class MarkerBucket:
  """A bucket as TensorFlow's GCS file system leaves it: a zero-byte `NAME/` per folder made.

  It is both the object-store side of marker removal (`object_store.Bucket`) and the store the
  stand-in launcher downloads from (`kfp_launcher.ObjectStore`).
  """

  def __init__(self):
    self.objects = {}

  def makedirs(self, key):
    parts = key.strip('/').split('/')
    for depth in range(1, len(parts) + 1):
      self.objects.setdefault('/'.join(parts[:depth]) + '/', b'')

  def write(self, key, data):
    self.makedirs(os.path.dirname(key))
    self.objects[key] = data

  def list(self, prefix):
    return sorted((key, len(data)) for key, data in self.objects.items() if key.startswith(prefix))

  def read(self, key):
    return self.objects[key]

  def delete(self, key):
    del self.objects[key]


BUCKET = MarkerBucket()  # The one MarkerWritingExecutor writes to.


class MarkerWritingExecutor(base_executor.BaseExecutor):
  """Writes a small SavedModel-shaped tree into each output, as TensorFlow writes it on GCS."""

  def Do(self, input_dict, output_dict, exec_properties):
    for artifacts in output_dict.values():
      for artifact in artifacts:
        key = object_store.split_uri(artifact.uri)[2]
        BUCKET.write(f'{key}/Format-Serving/saved_model.pb', b'graph')
        BUCKET.write(f'{key}/Format-Serving/variables/variables.index', b'index')


def _executor_input(tmp_path, publish_logs):
  outputs = {'model': {'artifacts': [{'name': 'model', 'uri': 'gs://bucket/run/Trainer/1/model',
                                      'type': {'instanceSchema': _MODEL_SCHEMA}}]}}
  if publish_logs:
    outputs[kfp_launcher.EXECUTOR_LOGS] = {'artifacts': [{
        'name': kfp_launcher.EXECUTOR_LOGS, 'uri': 'gs://bucket/run/Trainer/1/executor-logs',
        'type': {'schemaTitle': 'system.Artifact'}}]}
  return {'inputs': {'parameterValues': {kfp_entrypoint.RUN_ID_PARAMETER: 'run-7'},
                     'artifacts': {'examples': {'artifacts': [{
                         'name': '12', 'uri': 'gs://bucket/run/Gen/1/examples',
                         'type': {'instanceSchema': ''}, 'metadata': {'span': 1.0}}]}}},
          'outputs': {'artifacts': outputs,
                      'outputFile': str(tmp_path / 'task' / 'output_metadata.json')}}


_INPUTS_SPEC = {'artifacts': {'examples': {'artifactType': {'instanceSchema': _EXAMPLES_SCHEMA}}}}


def test_input_types_come_from_the_inputs_spec_and_kfp_outputs_are_set_aside(tmp_path):
  adapted = kfp_entrypoint.adapt_executor_input(_executor_input(tmp_path, True), _INPUTS_SPEC)
  examples, = adapted['inputs']['artifacts']['examples']['artifacts']
  assert examples['type'] == {'instanceSchema': _EXAMPLES_SCHEMA}
  assert set(adapted['outputs']['artifacts']) == {'model'}
  assert adapted['inputs']['parameterValues'] == {}


def test_a_typed_input_is_left_as_it_is(tmp_path):
  executor_input = _executor_input(tmp_path, False)
  typed = {'schemaTitle': 'tfx.Examples'}
  executor_input['inputs']['artifacts']['examples']['artifacts'][0]['type'] = typed
  adapted = kfp_entrypoint.adapt_executor_input(executor_input, None)
  assert adapted['inputs']['artifacts']['examples']['artifacts'][0]['type'] == typed


def test_an_input_without_a_type_anywhere_is_named_in_one_line(tmp_path):
  with pytest.raises(ValueError, match=r"^input artifact 'examples' has no type, and the inputs "
                                       r'spec names none$'):
    kfp_entrypoint.adapt_executor_input(_executor_input(tmp_path, False), {'artifacts': {}})


@pytest.mark.parametrize('cpu_max, limit', [('300000 100000', 3), ('150000 100000', 2),
                                            ('50000 100000', 1), ('max 100000', None)])
def test_beam_runs_one_worker_per_cpu_of_the_pods_limit(tmp_path, monkeypatch, cpu_max, limit):
  (tmp_path / 'cpu.max').write_text(cpu_max + '\n')
  monkeypatch.setattr(kfp_entrypoint, '_CGROUP_V2_CPU', str(tmp_path / 'cpu.max'))
  assert kfp_entrypoint.pod_cpu_limit() == limit
  args = ['--direct_running_mode=multi_processing', '--direct_num_workers=0']
  assert kfp_entrypoint.beam_args_for_pod(args, limit) == (
      args if limit is None else [args[0], f'--direct_num_workers={limit}'])


def test_an_explicit_worker_count_is_kept():
  assert kfp_entrypoint.beam_args_for_pod(['--direct_num_workers=6'], 2) == [
      '--direct_num_workers=6']


def _saved_model_as_gcs_holds_it(tmp_path, bucket, key):
  """Saves a SavedModel, then puts it in `bucket` as TensorFlow writes one to GCS."""
  module = tf.Module()
  module.scale = tf.Variable(3.0)
  module.call = tf.function(lambda x: x * module.scale,
                            input_signature=[tf.TensorSpec([], tf.float32)])
  local = tmp_path / 'model'
  tf.saved_model.save(module, str(local))
  for folder, _, names in os.walk(local):
    relative = os.path.relpath(folder, local)
    bucket.makedirs(key if relative == '.' else f'{key}/{relative}')
    for name in names:
      with open(os.path.join(folder, name), 'rb') as data:
        bucket.write(os.path.normpath(f'{key}/{relative}/{name}'), data.read())


def test_folder_markers_break_the_launchers_download_until_they_are_removed(tmp_path):
  bucket, key = MarkerBucket(), 'root/run/Trainer/1/model'
  _saved_model_as_gcs_holds_it(tmp_path, bucket, key)
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'pods'), stores={'gcs': bucket})
  executor_input = {'inputs': {'artifacts': {'model': {'artifacts': [
      {'name': '1', 'uri': f'gs://bucket/{key}', 'type': {'instanceSchema': ''}}]}}}}
  with pytest.raises(kfp_launcher.TaskFailedError, match='not a directory'):
    kfp_launcher._download_inputs(executor_input, backend, str(tmp_path / 'pod-1'))

  removed = object_store.remove_folder_markers(f'gs://bucket/{key}', bucket)
  assert removed == 3  # model/, model/assets/ and model/variables/.
  assert not [name for name, _ in bucket.list(key) if name.endswith('/')]
  kfp_launcher._download_inputs(executor_input, backend, str(tmp_path / 'pod-2'))
  loaded = tf.saved_model.load(str(tmp_path / 'pod-2' / 'gcs' / 'bucket' / key))
  assert float(loaded.call(tf.constant(2.0))) == 6.0


@pytest.mark.parametrize('entrypoint', ['tfx', 'project'])
def test_only_the_projects_entrypoint_leaves_no_markers_in_its_outputs(tmp_path, monkeypatch,
                                                                       entrypoint):
  """TFX's entrypoint (the spec before 6bf0f4e's successor) leaves them; the project's removes
  them, after running the same executor."""
  BUCKET.objects.clear()
  monkeypatch.setattr(object_store, 'bucket_for', lambda uri: BUCKET)
  executor_input = _executor_input(tmp_path, publish_logs=entrypoint == 'project')
  if entrypoint == 'tfx':  # It could not read the typeless input: give it what Vertex AI gives.
    executor_input = kfp_entrypoint.adapt_executor_input(executor_input, _INPUTS_SPEC)
  argv = ['--executor_class_path', f'{__name__}.MarkerWritingExecutor',
          '--json_serialized_invocation_args', json.dumps(executor_input),
          '--json_serialized_inputs_spec_args', json.dumps(_INPUTS_SPEC)]
  if entrypoint == 'tfx':
    kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags(argv))
  else:
    assert kfp_entrypoint.main(argv) == 0
  markers = [key for key, _ in BUCKET.list('run/Trainer/1/model/') if key.endswith('/')]
  assert bool(markers) is (entrypoint == 'tfx')
  assert ('run/Trainer/1/model/Format-Serving/variables/variables.index', 5) in BUCKET.list('')
  with open(tmp_path / 'task' / 'output_metadata.json') as output_file:
    assert set(json.load(output_file)['artifacts']) == {'model'}


@pytest.mark.parametrize('quota, limit', [('200000', 2), ('-1', None)])
def test_a_cgroup_v1_cpu_quota_is_read_too(tmp_path, monkeypatch, quota, limit):
  (tmp_path / 'quota').write_text(quota + '\n')
  (tmp_path / 'period').write_text('100000\n')
  monkeypatch.setattr(kfp_entrypoint, '_CGROUP_V2_CPU', str(tmp_path / 'absent'))
  monkeypatch.setattr(kfp_entrypoint, '_CGROUP_V1_CPU',
                      (str(tmp_path / 'quota'), str(tmp_path / 'period')))
  assert kfp_entrypoint.pod_cpu_limit() == limit
