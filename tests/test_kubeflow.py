"""kubeflow_runner.py: the compiled KFP v2 spec is the local pipeline, in the project's image."""

import json
import os
import re

import pytest
import yaml
from tfx import v1 as tfx

import kubeflow_runner
from pipeline import configs
from pipeline.pipeline import create_pipeline
from tests.conftest import REPO_ROOT

IMAGE = 'registry.example.com/team/imdb-bert-tfx:1.2.3'
BEAM_ARGS = '--runner=FlinkRunner --flink_master=flink.example.com:8081 --parallelism=4'
ROOT = 'gs://test-bucket/imdb'


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
  output = tmp_path_factory.mktemp('kfp') / 'imdb-bert.yaml'
  assert kubeflow_runner.main([
      '--output', str(output), '--image', IMAGE, '--beam-args', BEAM_ARGS,
      '--pipeline-root', ROOT]) == 0
  with open(output) as spec_file:
    return yaml.safe_load(spec_file)


def _node_id(task_id, node_ids):
  """The local node of a spec task: a Resolver compiles into one task per input channel."""
  return next(node for node in node_ids if task_id == node or task_id.startswith(node + '-'))


def test_every_local_component_is_a_task_with_the_same_dependencies(spec):
  local = create_pipeline(pipeline_name='imdb-bert-default', pipeline_root=ROOT,
                          corpus_path=f'{ROOT}/data/aclImdb', serving_model_dir=f'{ROOT}/serving',
                          **configs.PRESETS['default'].pipeline_args())
  node_ids = [component.id for component in local.components]
  tasks = spec['root']['dag']['tasks']
  assert {_node_id(task, node_ids) for task in tasks} == set(node_ids)
  for component in local.components:
    if component.id.endswith('resolver'):
      continue  # Resolvers have no upstream; their tasks are checked as dependencies below.
    dependencies = {_node_id(task, node_ids) for task in tasks[component.id].get('dependentTasks', [])}
    assert dependencies == {upstream.id for upstream in component.upstream_nodes}, component.id
  assert spec['pipelineInfo']['name'] == 'imdb-bert-default'
  assert re.fullmatch(r'[a-z0-9][a-z0-9-]*', spec['pipelineInfo']['name'])
  assert spec['defaultPipelineRoot'] == f'{ROOT}/pipelines/imdb-bert-default'


def test_every_executor_runs_the_image_with_the_beam_args(spec):
  executors = spec['deploymentSpec']['executors']
  containers = [executor['container'] for executor in executors.values() if 'container' in executor]
  assert len(containers) == len([task for task in spec['root']['dag']['tasks']
                                 if 'resolver' not in task])
  for container in containers:
    assert container['image'] == IMAGE
    assert ' '.join(container['args']).endswith(BEAM_ARGS)


def test_components_name_the_projects_code_by_module_path(spec):
  tasks = spec['root']['dag']['tasks']

  def parameter(task, name):
    return tasks[task]['inputs']['parameters'][name]['runtimeValue']['constantValue']['stringValue']

  assert parameter('Transform', 'preprocessing_fn') == 'modules.preprocessing.preprocessing_fn'
  assert parameter('PretrainTrainer', 'run_fn') == 'modules.pretrain_trainer.run_fn'
  assert parameter('ClassifierTrainer', 'run_fn') == 'modules.classifier_trainer.run_fn'
  assert parameter('ImportSchemaGen', 'schema_file') == kubeflow_runner.IMAGE_SCHEMA_PATH
  executors = spec['deploymentSpec']['executors']
  class_paths = {name: executor['container']['args'][1] for name, executor in executors.items()
                 if 'container' in executor}
  assert class_paths['ImdbExampleGen_executor'] == 'components.imdb_example_gen.executor.Executor'
  assert class_paths['DataGate_executor'].startswith('components.data_gate.')


def test_json_output_is_a_vertex_pipeline_job(tmp_path):
  output = tmp_path / 'job.json'
  assert kubeflow_runner.main(['--output', str(output)]) == 0
  job = json.loads(output.read_text())
  assert job['runtimeConfig']['gcsOutputDirectory'].startswith(kubeflow_runner.PLACEHOLDER_ROOT)
  assert 'Pusher' in job['pipelineSpec']['root']['dag']['tasks']


def test_submitting_with_the_placeholder_root_is_refused(tmp_path, capsys):
  with pytest.raises(SystemExit) as stop:
    kubeflow_runner.main(['--output', str(tmp_path / 'p.yaml'), '--host', 'http://localhost:1'])
  assert stop.value.code == 2
  assert '--pipeline-root is still the placeholder' in capsys.readouterr().err


def test_image_installs_the_project_from_the_same_constraints_and_holds_the_schema():
  with open(os.path.join(REPO_ROOT, 'Dockerfile')) as dockerfile:
    recipe = dockerfile.read()
  assert re.search(r'^FROM python:3\.10[.\d]*-slim$', recipe, re.M)
  assert re.search(rf'^WORKDIR {kubeflow_runner.IMAGE_PROJECT_DIR}$', recipe, re.M)
  assert re.search(r'^COPY [^\n]*\bconstraints\.txt\b', recipe, re.M)
  assert re.search(r'^RUN pip install [^\n]*-c constraints\.txt \.', recipe, re.M)
  for package in ('pipeline', 'components', 'modules'):
    assert re.search(rf'^COPY {package} {package}$', recipe, re.M)
  schema_in_repo = os.path.relpath(kubeflow_runner.IMAGE_SCHEMA_PATH, kubeflow_runner.IMAGE_PROJECT_DIR)
  assert os.path.isfile(os.path.join(REPO_ROOT, schema_in_repo))


def test_retraining_spec_reads_span_drops_and_warm_starts_from_the_blessed_model(tmp_path):
  output = tmp_path / 'retrain.yaml'
  assert kubeflow_runner.main(['--output', str(output), '--span-window', '3',
                               '--data', 'gs://test-bucket/drops']) == 0
  tasks = yaml.safe_load(output.read_text())['root']['dag']['tasks']
  for trainer in ('PretrainTrainer', 'ClassifierTrainer'):
    assert 'latest_blessed_model_resolver-model-resolver' in tasks[trainer]['dependentTasks']
  parameters = tasks['ImdbExampleGen']['inputs']['parameters']
  assert 'span-{SPAN}/train/' in parameters['input_config']['runtimeValue']['constantValue']['stringValue']
  assert parameters['input_base']['runtimeValue']['constantValue']['stringValue'] == 'gs://test-bucket/drops'


def test_each_type_a_latest_artifact_resolver_finds_has_one_producer():
  """KFP v2 compiles a latest-artifact resolver into a query by artifact type alone (unlike
  the local runner, which also matches the producer): only one component may produce it."""
  retraining = create_pipeline(pipeline_name='imdb-bert-default', pipeline_root=ROOT,
                               corpus_path=f'{ROOT}/drops', serving_model_dir=f'{ROOT}/serving',
                               **{**configs.PRESETS['default'].pipeline_args(), 'span_window': 3})
  strategies = {component.id: component.exec_properties.get('resolver_class')
                for component in retraining.components}
  resolvers = [component for component in retraining.components
               if strategies[component.id] is tfx.dsl.experimental.LatestArtifactStrategy]
  assert resolvers
  for resolver in resolvers:
    for channel in resolver.raw_inputs.values():
      producers = [component.id for component in retraining.components
                   if not strategies[component.id]
                   and any(output.type_name == channel.type_name
                           for output in component.outputs.values())]
      assert producers == [channel.producer_component_id], (resolver.id, producers)
