"""kubeflow_runner.py: the compiled KFP v2 spec is the local pipeline, in the project's image."""

import json
import os
import re
import types

import pytest
import yaml

import kubeflow_runner
from pipeline import configs, kfp_entrypoint
from pipeline.pipeline import create_pipeline
from tests import kfp_launcher
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


def test_every_local_component_is_a_task_with_the_same_dependencies(spec):
  local = create_pipeline(pipeline_name='imdb-bert-default', pipeline_root=ROOT,
                          corpus_path=f'{ROOT}/data/aclImdb', serving_model_dir=f'{ROOT}/serving',
                          **configs.PRESETS['default'].pipeline_args())
  tasks = spec['root']['dag']['tasks']
  assert set(tasks) == {component.id for component in local.components}
  for component in local.components:
    assert set(tasks[component.id].get('dependentTasks', [])) == {
        upstream.id for upstream in component.upstream_nodes}, component.id
  assert spec['pipelineInfo']['name'] == 'imdb-bert-default'
  assert re.fullmatch(r'[a-z0-9][a-z0-9-]*', spec['pipelineInfo']['name'])
  assert spec['defaultPipelineRoot'] == f'{ROOT}/pipelines/imdb-bert-default'


def test_every_executor_runs_the_image_with_the_beam_args(spec):
  executors = spec['deploymentSpec']['executors']
  containers = [executor['container'] for executor in executors.values()]
  assert len(containers) == len(spec['root']['dag']['tasks'])
  for container in containers:
    assert container['image'] == IMAGE
    # Flink's workers run in the image too (test_remote_beam_workers_run_the_projects_image).
    assert ' '.join(container['args']).endswith(
        f'{BEAM_ARGS} --environment_type=DOCKER --environment_config={IMAGE}')


def test_components_name_the_projects_code_by_module_path(spec):
  tasks = spec['root']['dag']['tasks']

  def parameter(task, name):
    return tasks[task]['inputs']['parameters'][name]['runtimeValue']['constant']

  assert parameter('Transform', 'preprocessing_fn') == 'modules.preprocessing.preprocessing_fn'
  assert parameter('PretrainTrainer', 'run_fn') == 'modules.pretrain_trainer.run_fn'
  assert parameter('ClassifierTrainer', 'run_fn') == 'modules.classifier_trainer.run_fn'
  assert parameter('ImportSchemaGen', 'schema_file') == kubeflow_runner.IMAGE_SCHEMA_PATH
  executors = spec['deploymentSpec']['executors']
  class_paths = {name: executor['container']['args'][1] for name, executor in executors.items()}
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


def test_image_is_the_beam_sdk_image_of_the_pinned_beam_with_the_project_installed():
  with open(os.path.join(REPO_ROOT, 'Dockerfile')) as dockerfile:
    recipe = dockerfile.read()
  with open(os.path.join(REPO_ROOT, 'constraints.txt')) as constraints:
    beam_version = re.search(r'^apache-beam==([\d.]+)$', constraints.read(), re.M).group(1)
  assert re.search(rf'^FROM apache/beam_python3\.10_sdk:{re.escape(beam_version)}$', recipe, re.M)
  assert not re.search(r'^(ENTRYPOINT|CMD)', recipe, re.M)  # Beam's workers start its boot.
  assert re.search(rf'^WORKDIR {kubeflow_runner.IMAGE_PROJECT_DIR}$', recipe, re.M)
  assert re.search(r'^COPY [^\n]*\bconstraints\.txt\b', recipe, re.M)
  assert re.search(r'^RUN pip install [^\n]*-c constraints\.txt \.', recipe, re.M)
  for package in ('pipeline', 'components', 'modules'):
    assert re.search(rf'^COPY {package} {package}$', recipe, re.M)
  schema_in_repo = os.path.relpath(kubeflow_runner.IMAGE_SCHEMA_PATH, kubeflow_runner.IMAGE_PROJECT_DIR)
  assert os.path.isfile(os.path.join(REPO_ROOT, schema_in_repo))


def test_retraining_spec_reads_span_drops_and_warm_starts_from_the_served_model(tmp_path):
  output = tmp_path / 'retrain.yaml'
  assert kubeflow_runner.main(['--output', str(output), '--span-window', '3',
                               '--data', 'gs://test-bucket/drops']) == 0
  tasks = yaml.safe_load(output.read_text())['root']['dag']['tasks']
  for consumer in ('PretrainTrainer', 'ClassifierTrainer', 'Evaluator'):
    assert 'LatestPushedModel' in tasks[consumer]['dependentTasks']
  parameters = tasks['ImdbExampleGen']['inputs']['parameters']
  assert 'span-{SPAN}/train/' in parameters['input_config']['runtimeValue']['constant']
  assert parameters['input_base']['runtimeValue']['constant'] == 'gs://test-bucket/drops'
  assert tasks['LatestPushedModel']['inputs']['parameters']['serving_model_dir'][
      'runtimeValue']['constant'] == f'{kubeflow_runner.PLACEHOLDER_ROOT}/serving_model/imdb-bert-default'


@pytest.mark.parametrize('beam_args, added', [
    ('--runner=DataflowRunner --project=p --region=r --temp_location=gs://b/tmp',
     [f'--sdk_container_image={IMAGE}']),
    ('--runner=dataflow --sdk_container_image=other:1', []),
    ('--runner=FlinkRunner --flink_master=flink:8081',
     ['--environment_type=DOCKER', f'--environment_config={IMAGE}']),
    ('--runner=SparkRunner --environment_type=LOOPBACK', []),
    ('--direct_running_mode=multi_processing', []),
])
def test_remote_beam_workers_run_the_projects_image(tmp_path, beam_args, added):
  output = tmp_path / 'spec.yaml'
  assert kubeflow_runner.main(['--output', str(output), '--image', IMAGE,
                               f'--beam-args={beam_args}']) == 0
  for executor in yaml.safe_load(output.read_text())['deploymentSpec']['executors'].values():
    args = executor['container']['args']
    assert args[len(args) - len(added) - len(beam_args.split()):] == beam_args.split() + added


def test_vertex_job_keeps_example_gen_cached_behind_its_driver_hook(tmp_path):
  """Vertex AI runs the preCacheCheck hook, where ExampleGen's driver fingerprints the input."""
  output = tmp_path / 'job.json'
  assert kubeflow_runner.main(['--output', str(output)]) == 0
  spec = json.loads(output.read_text())['pipelineSpec']
  tasks = spec['root']['dag']['tasks']
  assert tasks['ImdbExampleGen']['cachingOptions'] == {'enableCache': True}
  assert 'cachingOptions' not in tasks['LatestPushedModel']
  assert 'preCacheCheck' in spec['deploymentSpec']['executors']['ImdbExampleGen_executor'][
      'container']['lifecycle']


@pytest.mark.parametrize('flags, message', [
    (['--output', 'p.yaml', '--host', 'http://localhost:1', '--pipeline-root', ROOT,
      '--schedule', '0 3 * * *'], "Kubeflow Pipelines takes 6 cron fields"),
    (['--output', 'p.json', '--project', 'p', '--region', 'r', '--pipeline-root', ROOT,
      '--schedule', '0 0 3 * * *'], "Vertex AI takes 5 cron fields"),
    (['--output', 'p.json', '--project', 'p', '--pipeline-root', ROOT], '--project needs --region'),
    (['--output', 'p.yaml', '--project', 'p', '--region', 'r', '--pipeline-root', ROOT],
     '--project needs a .json --output'),
    (['--output', 'p.json', '--schedule', '0 3 * * *'], '--schedule needs --host'),
    (['--output', 'p.txt'], 'write a .yaml'),
    (['--output', 'p.json', '--trainer-replicas', '2', '--region', 'r', '--compile-only'],
     '--trainer-replicas needs --project and --region'),
    (['--output', 'p.json', '--trainer-replicas', '2', '--project', 'p', '--compile-only'],
     '--project needs --region'),
    (['--output', 'p.yaml', '--trainer-replicas', '2'],
     'open-source Kubeflow Pipelines trains each Trainer in its task, on one machine'),
    (['--output', 'p.json', '--trainer-accelerator', 'NVIDIA_TESLA_T4:1'],
     '--trainer-accelerator needs --trainer-replicas'),
    (['--output', 'p.json', '--trainer-replicas', '2', '--project', 'p', '--region', 'r',
      '--trainer-accelerator', 'T4'], 'write TYPE:COUNT'),
])
def test_flag_combinations_that_cannot_work_are_refused_in_one_line(tmp_path, capsys, flags, message):
  flags[1] = str(tmp_path / flags[1])
  with pytest.raises(SystemExit) as stop:
    kubeflow_runner.main(flags)
  assert stop.value.code == 2
  assert message in capsys.readouterr().err
  assert not os.listdir(tmp_path)


def test_submitting_to_an_unreachable_kubeflow_fails_in_one_line(tmp_path, capsys):
  output = tmp_path / 'p.yaml'
  status = kubeflow_runner.main(['--output', str(output), '--host', 'http://127.0.0.1:9',
                                 '--pipeline-root', ROOT])
  stderr = capsys.readouterr().err.strip().splitlines()
  assert status == 1
  assert output.exists()  # Compiled first.
  assert len(stderr) == 1
  assert stderr[0].startswith('error: Kubeflow Pipelines at http://127.0.0.1:9 did not take the')


def test_submitting_to_vertex_without_credentials_fails_in_one_line(tmp_path, capsys, monkeypatch):
  monkeypatch.delenv('GOOGLE_APPLICATION_CREDENTIALS', raising=False)
  monkeypatch.setenv('CLOUDSDK_CONFIG', str(tmp_path / 'no-gcloud'))
  monkeypatch.setenv('NO_GCE_CHECK', 'true')
  status = kubeflow_runner.main(['--output', str(tmp_path / 'job.json'), '--project', 'p',
                                 '--region', 'us-central1', '--pipeline-root', ROOT])
  stderr = capsys.readouterr().err.strip().splitlines()
  assert status == 1
  assert stderr == ['error: no Google Cloud credentials to submit to Vertex AI: run `gcloud auth '
                    'application-default login` or set GOOGLE_APPLICATION_CREDENTIALS']


def test_vertex_spec_runs_each_trainer_as_a_training_job_of_the_replicas(tmp_path, capsys):
  output = tmp_path / 'job.json'
  assert kubeflow_runner.main([
      '--output', str(output), '--image', IMAGE, '--pipeline-root', ROOT, '--project', 'a-project',
      '--region', 'europe-west4', '--trainer-replicas', '3', '--trainer-machine-type',
      'n1-highmem-16', '--trainer-accelerator', 'NVIDIA_TESLA_T4:2', '--compile-only']) == 0
  assert 'submitted' not in capsys.readouterr().out
  spec = json.loads(output.read_text())['pipelineSpec']
  tasks, executors = spec['root']['dag']['tasks'], spec['deploymentSpec']['executors']
  for trainer, run_fn in (('PretrainTrainer', 'modules.pretrain_trainer.run_fn'),
                          ('ClassifierTrainer', 'modules.classifier_trainer.run_fn')):
    parameters = {name: value['runtimeValue']['constant']
                  for name, value in tasks[trainer]['inputs']['parameters'].items()}
    assert parameters['run_fn'] == run_fn
    assert executors[f'{trainer}_executor']['container']['args'][:2] == [
        '--executor_class_path', 'components.warm_start_trainer.component.VertexExecutor']
    config = json.loads(parameters['custom_config'])
    assert (config['ai_platform_enable_vertex'], config['ai_platform_vertex_region']) == (
        True, 'europe-west4')
    job = config['ai_platform_training_args']
    assert job['project'] == 'a-project'
    machine = {'machine_type': 'n1-highmem-16', 'accelerator_type': 'NVIDIA_TESLA_T4',
               'accelerator_count': 2}
    assert job['job_spec']['worker_pool_specs'] == [
        {'machine_spec': machine, 'replica_count': count, 'container_spec': {'image_uri': IMAGE}}
        for count in (1, 2)]
    assert job['job_spec']['scheduling'] == {'restart_job_on_worker_restart': True}
    schedule = 'pretraining' if trainer == 'PretrainTrainer' else 'fine_tuning'
    assert config['training']['steps'] == getattr(configs.PRESETS['default'], schedule).steps


@pytest.mark.parametrize('missing', ['project', 'region', 'image'])
def test_vertex_training_without_project_region_or_image_is_refused_in_one_line(missing):
  settings = {'project': 'p', 'region': 'r', 'image': IMAGE, missing: ''}
  with pytest.raises(ValueError, match=rf"^Vertex AI Training needs a {missing} \(got ''\)$"):
    kubeflow_runner.VertexTraining(replicas=2, **settings)


@pytest.mark.parametrize('flags', [[], ['--span-window', '3', '--data', 'gs://bucket/drops']])
def test_compiled_specs_hold_only_container_executors_and_always_run_the_lookups(tmp_path, flags):
  output = tmp_path / 'p.yaml'
  assert kubeflow_runner.main(['--output', str(output), '--preset', 'smoke', *flags]) == 0
  spec, platform = kfp_launcher.load_spec(str(output))  # Parsed as kfp.Client parses it.
  assert platform == {}
  kfp_launcher.check_executors(spec)
  assert {next(iter(executor)) for executor in spec['deploymentSpec']['executors'].values()} \
      == {'container'}
  tasks = spec['root']['dag']['tasks']
  uncached = {task for task, definition in tasks.items() if 'cachingOptions' not in definition}
  assert uncached == {'ImdbExampleGen', 'LatestPushedModel'}
  for task in uncached:  # A run-level enable_caching=True still finds a new cache key each run.
    parameters = tasks[task]['inputs']['parameters']
    assert parameters[kfp_entrypoint.RUN_ID_PARAMETER] == {
        'runtimeValue': {'constant': '{{$.pipeline_job_uuid}}'}}


@pytest.mark.parametrize('output', ['p.yaml', 'p.json'])
def test_every_task_runs_the_projects_entrypoint(tmp_path, output):
  assert kubeflow_runner.main(['--output', str(tmp_path / output)]) == 0
  text = (tmp_path / output).read_text()
  spec = json.loads(text)['pipelineSpec'] if output.endswith('json') else yaml.safe_load(text)
  for executor in spec['deploymentSpec']['executors'].values():
    assert executor['container']['command'] == ['python', '-m', 'pipeline.kfp_entrypoint']
  tasks = spec['root']['dag']['tasks']
  with_run_id = {task for task, definition in tasks.items()
                 if kfp_entrypoint.RUN_ID_PARAMETER in definition['inputs'].get('parameters', {})}
  # Vertex AI fingerprints ImdbExampleGen's input in its driver hook, so it may cache it.
  assert with_run_id == ({'LatestPushedModel'} if output.endswith('json')
                         else {'LatestPushedModel', 'ImdbExampleGen'})


_BEAM_TASKS = {'ImdbExampleGen', 'StatisticsGen', 'Transform', 'Evaluator'}
_TRAINERS = {'PretrainTrainer', 'ClassifierTrainer'}


def _resources(spec):
  return {task: kubeflow_runner._container(spec, task)['resources']
          for task in spec['root']['dag']['tasks']}


def test_each_task_requests_the_cpu_and_memory_of_its_kind_and_trainers_their_accelerator(
    tmp_path):
  output = tmp_path / 'p.yaml'
  assert kubeflow_runner.main(['--output', str(output), '--beam-cpu', '6', '--beam-memory', '24',
                               '--trainer-accelerator', 'nvidia.com/gpu:2']) == 0
  resources = _resources(kfp_launcher.load_spec(str(output))[0])
  for task, spec in resources.items():
    cpu, memory = (6, 24) if task in _BEAM_TASKS else (8, 32) if task in _TRAINERS else (1, 4)
    assert (spec['cpuRequest'], spec['cpuLimit'], spec['memoryRequest'], spec['memoryLimit']) == (
        cpu, cpu, memory, memory), task
    assert spec.get('accelerator') == (
        {'type': 'nvidia.com/gpu', 'count': '2'} if task in _TRAINERS else None), task


def test_trainers_that_run_vertex_jobs_only_wait_so_their_tasks_stay_small(tmp_path):
  output = tmp_path / 'job.json'
  assert kubeflow_runner.main([
      '--output', str(output), '--project', 'p', '--region', 'r', '--trainer-replicas', '2',
      '--trainer-accelerator', 'NVIDIA_TESLA_T4:1', '--compile-only']) == 0
  resources = _resources(json.loads(output.read_text())['pipelineSpec'])
  for trainer in _TRAINERS:
    assert resources[trainer] == {'cpuLimit': 1, 'cpuRequest': 1, 'memoryLimit': 4,
                                  'memoryRequest': 4}


def test_secret_env_puts_the_secrets_keys_into_every_tasks_environment(tmp_path):
  output = tmp_path / 'p.yaml'
  assert kubeflow_runner.main(['--output', str(output), '--secret-env',
                               'minio-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY',
                               '--secret-env', 'gcp-key:GOOGLE_APPLICATION_CREDENTIALS']) == 0
  spec, platform = kfp_launcher.load_spec(str(output))  # Valid for kfp.Client.
  executors = platform['platforms']['kubernetes']['deploymentSpec']['executors']
  assert set(executors) == set(spec['deploymentSpec']['executors'])
  for config in executors.values():
    assert config['secretAsEnv'] == [
        {'secretName': 'minio-creds', 'keyToEnv': [
            {'secretKey': 'AWS_ACCESS_KEY_ID', 'envVar': 'AWS_ACCESS_KEY_ID'},
            {'secretKey': 'AWS_SECRET_ACCESS_KEY', 'envVar': 'AWS_SECRET_ACCESS_KEY'}]},
        {'secretName': 'gcp-key', 'keyToEnv': [
            {'secretKey': 'GOOGLE_APPLICATION_CREDENTIALS',
             'envVar': 'GOOGLE_APPLICATION_CREDENTIALS'}]}]


@pytest.mark.parametrize('flags, message', [
    (['--host', 'http://localhost:1', '--pipeline-root', ''], '--pipeline-root is empty'),
    (['--host', 'http://localhost:1', '--pipeline-root', 'minio://mlpipeline/v2/artifacts'],
     'which open gs:// only'),
    (['--host', 'http://localhost:1', '--pipeline-root', '/local/root'], 'which open gs:// only'),
    (['--secret-env', 'creds'], 'write SECRET:KEY[,KEY...]'),
    (['--secret-env', 'Creds:KEY'], 'write SECRET:KEY[,KEY...]'),
    (['--trainer-accelerator', 'NVIDIA_TESLA_T4:1'], 'write the Kubernetes resource and a count'),
    (['--beam-memory', '0'], '--beam-memory 0: give a positive number'),
])
def test_kubeflow_flags_that_cannot_work_are_refused_in_one_line(tmp_path, capsys, flags, message):
  with pytest.raises(SystemExit) as stop:
    kubeflow_runner.main(['--output', str(tmp_path / 'p.yaml'), *flags])
  assert stop.value.code == 2
  assert message in capsys.readouterr().err
  assert not os.listdir(tmp_path)


def test_secret_env_is_refused_for_vertex_in_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit):
    kubeflow_runner.main(['--output', str(tmp_path / 'p.json'), '--secret-env', 'a:B'])
  assert '--secret-env needs a .yaml --output' in capsys.readouterr().err


class _RecordingClient:
  """kfp.Client's three calls that the runner makes, recorded."""
  calls = []

  def __init__(self, host):
    self.calls.append(('Client', host))

  def create_experiment(self, name):
    self.calls.append(('create_experiment', name))
    return types.SimpleNamespace(experiment_id='e-1')

  def create_run_from_pipeline_package(self, path, **kwargs):
    self.calls.append(('run', kwargs))
    return types.SimpleNamespace(run_id='r-1')

  def create_recurring_run(self, **kwargs):
    self.calls.append(('recurring', kwargs))
    return types.SimpleNamespace(recurring_run_id='rr-1')


@pytest.mark.parametrize('schedule', [None, '0 0 3 * * *'])
def test_submitted_runs_carry_the_pipeline_root(tmp_path, monkeypatch, capsys, schedule):
  """The backend never reads the spec's root: without the request's, runs write to minio://."""
  import kfp  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(kfp, 'Client', _RecordingClient)
  _RecordingClient.calls = []
  assert kubeflow_runner.main(['--output', str(tmp_path / 'p.yaml'), '--host', 'http://h',
                               '--pipeline-root', ROOT + '/'] +
                              (['--schedule', schedule] if schedule else [])) == 0
  kind, request = _RecordingClient.calls[-1]
  assert kind == ('recurring' if schedule else 'run')
  assert request['pipeline_root'] == f'{ROOT}/pipelines/imdb-bert-default'
  spec, _ = kfp_launcher.load_spec(str(tmp_path / 'p.yaml'))
  assert spec['defaultPipelineRoot'] == request['pipeline_root']
  assert 'submitted' in capsys.readouterr().out
