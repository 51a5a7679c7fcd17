"""The compiled KFP spec, executed as open-source Kubeflow Pipelines executes it (kfp_launcher.py).

The spec of the commit before the project's entrypoint (tests/data/spec-6bf0f4e.yaml) fails
there for three of the four reasons (the fourth, folder markers, is in test_kfp_entrypoint.py);
today's spec runs twice on one root, and the second run compares against what the first pushed
(and with --span-window fine-tunes from it).
"""

import json
import os

import pytest
from tfx import v1 as tfx
from tfx.utils import path_utils

import kubeflow_runner
from modules import outputs
from pipeline.pipeline import SCHEMA_PATH
from tests import kfp_launcher
from tests.conftest import REPO_ROOT, write_corpus, write_drop

OLD_SPEC = os.path.join(REPO_ROOT, 'tests', 'data', 'spec-6bf0f4e.yaml')


def _compile(tmp_path, *flags):
  output = tmp_path / 'spec' / 'imdb-bert.yaml'  # Its folder does not exist yet.
  assert kubeflow_runner.main(['--output', str(output), '--preset', 'smoke', *flags]) == 0
  return kfp_launcher.load_spec(str(output))


def _old_spec(tmp_path, drops):
  """The spec that 6bf0f4e compiled (smoke, --span-window 2), with this test's folders."""
  with open(OLD_SPEC) as spec_file:
    text = spec_file.read()
  for placeholder, path in (('@DATA@', drops), ('@ROOT@', tmp_path / 'root'),
                            ('@SERVING@', tmp_path / 'serving'), ('@SCHEMA@', SCHEMA_PATH)):
    text = text.replace(placeholder, str(path))
  path = tmp_path / 'old.yaml'
  path.write_text(text)
  return kfp_launcher.load_spec(str(path))[0]


def _one_node_spec(tmp_path, node):
  """The KFP spec of a pipeline that holds only `node`."""
  pipeline = tfx.dsl.Pipeline(pipeline_name='one-node', pipeline_root=str(tmp_path),
                              components=[node])
  job = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image='image', use_pipeline_spec_2_1=True)).run(pipeline, write_out=False)
  return dict(job['pipelineSpec'], defaultPipelineRoot=str(tmp_path))


def _serving_path(artifact):
  return path_utils.serving_model_dir(artifact['uri'])


# Each reason, with the backend that shows it alone: (publish_logs, send the root), the task
# that fails, and the failure in TFX's or TensorFlow's own words.
_OLD_SPEC_FAILURES = {
    'executor-logs output': (True, True, 'ImdbExampleGen', "No module named 'system'"),
    'empty input schema': (False, True, 'StatisticsGen',
                           "'NoneType' object has no attribute 'get'"),
    'root not sent': (False, False, 'ImdbExampleGen',
                      'Path specified: minio://mlpipeline/v2/artifacts/imdb-bert-smoke/run-1/'),
}


@pytest.mark.slow
@pytest.mark.parametrize('reason', sorted(_OLD_SPEC_FAILURES))
def test_the_spec_before_the_entrypoint_fails_on_the_open_source_backend(tmp_path, reason):
  publish_logs, send_root, failing_task, words = _OLD_SPEC_FAILURES[reason]
  drops = tmp_path / 'drops'
  drops.mkdir()
  write_drop(drops, 1, tmp_path)
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'pods'), publish_logs=publish_logs)
  root = str(tmp_path / 'root') if send_root else None
  with pytest.raises(kfp_launcher.TaskFailedError, match=f'^{failing_task} failed') as failure:
    kfp_launcher.run_pipeline(_old_spec(tmp_path, drops), backend, 'run-1', pipeline_root=root)
  assert words in str(failure.value)


@pytest.mark.slow
@pytest.mark.parametrize('retraining', [False, True], ids=['plain', 'span-window'])
def test_the_spec_runs_twice_on_one_root_and_builds_on_what_it_pushed(tmp_path, retraining):
  data, serving, root = tmp_path / 'data', tmp_path / 'serving', tmp_path / 'root'
  data.mkdir()
  flags = ['--pipeline-root', str(root), '--serving-dir', str(serving), '--schema', SCHEMA_PATH]
  if retraining:
    write_drop(data, 1, tmp_path)
    flags += ['--span-window', '2', '--data', str(data)]
  else:
    flags += ['--data', str(write_corpus(data, reviews_per_folder=120))]
  spec, platform = _compile(tmp_path, *flags)
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'pods'))  # KFP 2.17's defaults.
  name = spec['pipelineInfo']['name']
  run_root = kubeflow_runner.pipeline_root(str(root), name)  # What --host sends.

  first = kfp_launcher.run_pipeline(spec, backend, 'run-1', pipeline_root=run_root,
                                    platform_spec=platform)
  assert not any(result.cached for result in first.values())
  for task, result in first.items():
    for artifact in result.outputs.values():
      assert artifact['uri'].startswith(f'{run_root}/{name}/run-1/{task}/'), artifact['uri']
  if retraining:
    assert first['ImdbExampleGen'].outputs['examples']['metadata']['spans'] == '1'
  assert not os.listdir(first['LatestPushedModel'].outputs['model']['uri'])  # Nothing served.
  assert outputs.ENCODER_FILE in os.listdir(_serving_path(first['PretrainTrainer'].outputs['model']))
  assert first['Evaluator'].outputs['blessing']['metadata']['blessed'] == 1
  pushed = first['Pusher'].outputs['pushed_model']['metadata']
  assert pushed['pushed'] == 1
  assert os.path.isfile(os.path.join(pushed['pushed_destination'], 'saved_model.pb'))

  if retraining:
    write_drop(data, 2, tmp_path)
  second = kfp_launcher.run_pipeline(spec, backend, 'run-2', pipeline_root=run_root,
                                     platform_spec=platform)
  cached = {task for task, result in second.items() if result.cached}
  assert cached == {'ImportSchemaGen'}  # ImdbExampleGen reads the data again, and all after it.
  served = second['LatestPushedModel'].outputs['model']
  assert served['metadata']['pushed_destination'] == pushed['pushed_destination']
  assert served['metadata']['pushed_from'] == _serving_path(first['ClassifierTrainer'].outputs['model'])
  # The Evaluator compared against it; with drops, fine-tuning started from it, so no
  # pretraining ran.
  blessing = second['Evaluator'].outputs['blessing']['metadata']
  assert (blessing['baseline_model'], blessing['baseline_model_id']) == (served['uri'], served['name'])
  skipped = os.path.join(_serving_path(second['PretrainTrainer'].outputs['model']),
                         outputs.PRETRAINING_SKIPPED_FILE)
  assert os.path.exists(skipped) is retraining
  if retraining:
    with open(skipped) as skipped_file:
      assert json.load(skipped_file)['warm_start_model'] == _serving_path(served)
    assert f'Warm start from {_serving_path(served)}' in second['ClassifierTrainer'].log


def test_a_resolver_is_refused_before_anything_runs(tmp_path):
  """KFP's compiler refuses a run whose spec holds a resolver; so does the stand-in."""
  spec = _one_node_spec(tmp_path, tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model)).with_id('latest_model'))
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'tasks'))
  with pytest.raises(kfp_launcher.UnsupportedSpecError, match=r'latest_model_executor \(resolver\)'):
    kfp_launcher.run_pipeline(spec, backend, 'run-1', pipeline_root=str(tmp_path))
  assert not os.path.exists(backend.workdir)


@pytest.mark.parametrize('reimport', [False, True])
def test_an_importer_registers_its_uri_once_unless_reimported(tmp_path, reimport):
  spec = _one_node_spec(tmp_path, tfx.dsl.Importer(
      source_uri=os.path.dirname(SCHEMA_PATH), reimport=reimport,
      artifact_type=tfx.types.standard_artifacts.Schema).with_id('schema'))
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'tasks'))
  first = kfp_launcher.run_pipeline(spec, backend, 'run-1')['schema'].outputs['result']
  second = kfp_launcher.run_pipeline(spec, backend, 'run-2')['schema'].outputs['result']
  assert first['uri'] == second['uri'] == os.path.dirname(SCHEMA_PATH)
  assert first['type'] == {'instanceSchema': ''}  # As ML Metadata hands it back.
  assert (second['name'] == first['name']) is not reimport


def _only(spec, task):
  """`spec` with one task of it left."""
  return dict(spec, root={'dag': {'tasks': {task: spec['root']['dag']['tasks'][task]}}})


@pytest.mark.slow
@pytest.mark.parametrize('which', ['before', 'today'])
def test_a_run_level_enable_caching_still_looks_up_the_served_model_every_run(tmp_path, which):
  """kfp.Client(...).create_run_from_pipeline_package(..., enable_caching=True) turns every
  task's cache on; the lookup of the served model must still run, on KFP 2.5 and later."""
  if which == 'before':
    spec = _old_spec(tmp_path, tmp_path / 'drops')
  else:
    spec, _ = _compile(tmp_path, '--pipeline-root', str(tmp_path / 'root'),
                       '--serving-dir', str(tmp_path / 'serving'))
  spec = _only(spec, 'LatestPushedModel')
  # KFP 2.5 to 2.13 for the spec before: it resolves the placeholder, and has no executor-logs,
  # on which that spec's tasks fail first.
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'pods'), publish_logs=which == 'today')
  runs = [kfp_launcher.run_pipeline(spec, backend, run, pipeline_root=str(tmp_path / 'root'),
                                    enable_caching=True)['LatestPushedModel']
          for run in ('run-1', 'run-2')]
  assert [run.cached for run in runs] == [False, which == 'before']


def test_a_spec_with_a_field_the_protos_lack_is_refused_as_kfp_client_refuses_it(tmp_path):
  path = tmp_path / 'spec.yaml'
  path.write_text(open(OLD_SPEC).read().replace('defaultPipelineRoot:', 'pipelineRootDefault:'))
  with pytest.raises(kfp_launcher.UnsupportedSpecError, match='pipelineRootDefault'):
    kfp_launcher.load_spec(str(path))


def test_metadata_comes_back_from_ml_metadata_as_the_converter_writes_it(tmp_path):
  backend = kfp_launcher.Backend(workdir=str(tmp_path))
  artifact_id = backend.record('model', 'title: tfx.Model', {'uri': 'gs://b/m', 'metadata': {
      'blessed': 1, 'ok': True, 'splits': ['a'], 'span': '2'}}, 'gs://b')
  artifact = backend.runtime_artifact(artifact_id)
  assert artifact['type'] == {'instanceSchema': ''}
  assert artifact['metadata']['blessed'] == 1.0 and isinstance(artifact['metadata']['blessed'], float)
  assert artifact['metadata']['ok'] == 1.0
  assert artifact['metadata']['splits'] == {'list': ['a']}
  assert artifact['metadata']['display_name'] == 'model'


def test_a_secret_key_the_namespace_lacks_stops_the_pod(tmp_path):
  backend = kfp_launcher.Backend(workdir=str(tmp_path), secrets={'creds': {'A': 'a'}})
  config = {'secretAsEnv': [{'secretName': 'creds', 'keyToEnv': [
      {'secretKey': 'A', 'envVar': 'A'}, {'secretKey': 'B', 'envVar': 'B'}]}]}
  with pytest.raises(kfp_launcher.TaskFailedError, match='secret "creds" has no key "B"'):
    kfp_launcher._pod_environment(config, backend, 'Pusher')
  config['secretAsEnv'][0]['keyToEnv'].pop()
  assert kfp_launcher._pod_environment(config, backend, 'Pusher')['A'] == 'a'
