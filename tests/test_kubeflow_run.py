"""The compiled KFP spec, executed as open-source Kubeflow Pipelines executes it (kfp_launcher.py).

Two scheduled-retraining runs of the smoke preset with one pipeline root: the first pushes, the
second finds the next drop itself (no ExampleGen driver runs), compares against and fine-tunes
from what the first pushed, and skips pretraining.
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
from tests.conftest import write_drop


def _compile(tmp_path, *flags):
  output = tmp_path / 'spec' / 'imdb-bert.yaml'  # Its folder does not exist yet.
  assert kubeflow_runner.main(['--output', str(output), '--preset', 'smoke', *flags]) == 0
  return kfp_launcher.load_spec(str(output))


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


@pytest.mark.slow
def test_the_retraining_spec_runs_twice_as_kfp_runs_it_and_builds_on_what_it_pushed(tmp_path):
  drops, serving = tmp_path / 'drops', tmp_path / 'serving'
  drops.mkdir()
  spec = _compile(tmp_path, '--span-window', '2', '--data', str(drops),
                  '--pipeline-root', str(tmp_path / 'root'), '--serving-dir', str(serving),
                  '--schema', SCHEMA_PATH)
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'tasks'))

  write_drop(drops, 1, tmp_path)
  first = kfp_launcher.run_pipeline(spec, backend, 'run-1')
  assert not any(result.cached for result in first.values())
  assert first['ImdbExampleGen'].outputs['examples']['metadata']['spans'] == '1'
  assert not os.listdir(first['LatestPushedModel'].outputs['model']['uri'])  # Nothing served.
  assert outputs.ENCODER_FILE in os.listdir(_serving_path(first['PretrainTrainer'].outputs['model']))
  assert first['Evaluator'].outputs['blessing']['metadata']['blessed'] == 1
  pushed = first['Pusher'].outputs['pushed_model']['metadata']
  assert pushed['pushed'] == 1
  assert os.path.isfile(os.path.join(pushed['pushed_destination'], 'saved_model.pb'))

  write_drop(drops, 2, tmp_path)
  second = kfp_launcher.run_pipeline(spec, backend, 'run-2')
  cached = {task for task, result in second.items() if result.cached}
  assert cached == {'ImportSchemaGen'}  # Every other task has a new input.
  assert second['ImdbExampleGen'].outputs['examples']['metadata']['spans'] == '1,2'
  served = second['LatestPushedModel'].outputs['model']
  assert served['metadata']['pushed_destination'] == pushed['pushed_destination']
  assert served['metadata']['pushed_from'] == _serving_path(first['ClassifierTrainer'].outputs['model'])
  # The Evaluator compared against it, and fine-tuning started from it, so no pretraining ran.
  blessing = second['Evaluator'].outputs['blessing']['metadata']
  assert (blessing['baseline_model'], blessing['baseline_model_id']) == (served['uri'], served['name'])
  with open(os.path.join(_serving_path(second['PretrainTrainer'].outputs['model']),
                         outputs.PRETRAINING_SKIPPED_FILE)) as skipped:
    assert json.load(skipped)['warm_start_model'] == _serving_path(served)
  assert f'Warm start from {_serving_path(served)}' in second['ClassifierTrainer'].log
  if blessing['blessed'] == 1:
    assert len([name for name in os.listdir(serving) if name.isdigit()]) == 2


@pytest.mark.parametrize('flags', [[], ['--span-window', '3', '--data', 'gs://bucket/drops']])
def test_compiled_specs_hold_only_container_executors_and_always_run_the_lookups(tmp_path, flags):
  spec = _compile(tmp_path, *flags)
  kfp_launcher.check_executors(spec)
  assert {next(iter(executor)) for executor in spec['deploymentSpec']['executors'].values()} \
      == {'container'}
  tasks = spec['root']['dag']['tasks']
  uncached = {task for task, definition in tasks.items() if 'cachingOptions' not in definition}
  assert uncached == {'ImdbExampleGen', 'LatestPushedModel'}


def test_a_resolver_is_refused_before_anything_runs(tmp_path):
  """KFP's compiler refuses a run whose spec holds a resolver; so does the stand-in."""
  spec = _one_node_spec(tmp_path, tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model)).with_id('latest_model'))
  backend = kfp_launcher.Backend(workdir=str(tmp_path / 'tasks'))
  with pytest.raises(kfp_launcher.UnsupportedSpecError, match=r'latest_model_executor \(resolver\)'):
    kfp_launcher.run_pipeline(spec, backend, 'run-1')
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
  assert 'tfx.Schema' in str(first['type'])
  assert (second['name'] == first['name']) is not reimport
