"""Compiles the pipeline for Kubeflow Pipelines v2 or Vertex AI Pipelines; optionally submits it.

Usage:
  python kubeflow_runner.py --output imdb-bert.yaml            # compile only, no cluster needed
  python kubeflow_runner.py --output imdb-bert.yaml \\
      --pipeline-root gs://BUCKET/imdb-bert --image REGISTRY/imdb-bert-tfx:0.1.0 \\
      --host https://KFP_HOST [--schedule '0 0 3 * * *']   # open-source Kubeflow Pipelines
  python kubeflow_runner.py --output imdb-bert.json \\
      --pipeline-root gs://BUCKET/imdb-bert --image REGION-docker.pkg.dev/PROJECT/REPO/imdb-bert-tfx:0.1.0 \\
      --project PROJECT --region REGION [--schedule '0 3 * * *']   # Vertex AI Pipelines
      [--trainer-replicas 4 --trainer-machine-type n1-standard-16]  # Trainers on 4 machines

A `.yaml` output is a KFP pipeline spec (for `kfp.Client`); a `.json` output is the PipelineJob
that Vertex AI Pipelines takes. Both hold only container executors: every task runs the
project's entrypoint (pipeline/kfp_entrypoint.py) in the project's image, with the CPU and
memory of its kind. Submitted runs carry the pipeline root. With `--trainer-replicas`, each
Trainer's task starts a Vertex AI Training job of that many replicas and waits for it;
open-source Kubeflow Pipelines trains on one replica.
"""

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pipeline import quiet

quiet.unless_verbose(sys.argv)  # Before TensorFlow loads.

import yaml  # pylint: disable=wrong-import-position
from apache_beam.options import pipeline_options  # pylint: disable=wrong-import-position
from tfx import v1 as tfx  # pylint: disable=wrong-import-position
from tfx.dsl.components.base import executor_spec  # pylint: disable=wrong-import-position
from tfx.types import standard_component_specs  # pylint: disable=wrong-import-position

from pipeline import configs, console, kfp_entrypoint  # pylint: disable=wrong-import-position
from pipeline.pipeline import (ALWAYS_RUN, VertexTraining,  # pylint: disable=wrong-import-position
                               create_pipeline)

# GCS bucket names are lower case, so this placeholder can never name somebody's bucket.
PLACEHOLDER_ROOT = 'gs://YOUR-BUCKET/imdb-bert'
DEFAULT_IMAGE = 'imdb-bert-tfx:latest'  # What `docker build -t imdb-bert-tfx .` tags.
# Where the Dockerfile puts the project inside the image (its WORKDIR).
IMAGE_PROJECT_DIR = '/imdb-bert-tfx'
IMAGE_SCHEMA_PATH = f'{IMAGE_PROJECT_DIR}/pipeline/schema/schema.pbtxt'
# Open-source KFP decides from a task's inputs whether to serve it from cache, and never runs
# the preCacheCheck hook in which ExampleGen's driver fingerprints the input files (Vertex AI
# runs it): there, a cached ExampleGen would miss new reviews, so it runs every time.
FINGERPRINTS_IN_HOOK = 'ImdbExampleGen'
# Every task runs the project's entrypoint: it adapts what the open-source backend hands a
# container, then runs TFX's (pipeline/kfp_entrypoint.py).
ENTRYPOINT = ['python', '-m', 'pipeline.kfp_entrypoint']
# Roots that the tasks can write: TFX, TensorFlow and Beam open them, not only KFP's launcher.
WRITABLE_ROOTS = ('gs://',)
# Beam runners whose workers run in containers: they must be given the project's image.
_PORTABLE_RUNNERS = ('flink', 'spark', 'portable')
# Cron fields of a recurring run: KFP's schedules count seconds first, Vertex AI's do not.
_CRON_FIELDS = {'yaml': 6, 'json': 5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The runner's flags, on its own parser or on the `imdb-bert compile-kfp` subcommand."""
  parser.add_argument('--output', required=True,
                      help='Pipeline file to write: .yaml (KFP) or .json (Vertex AI PipelineJob); '
                           'its folder is created')
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default',
                      help='Data size, model and training knobs (default: default)')
  parser.add_argument('--pipeline-root',
                      default=os.environ.get('KFP_PIPELINE_ROOT', PLACEHOLDER_ROOT),
                      help='Artifact root, gs:// or s3:// (default: $KFP_PIPELINE_ROOT, else '
                           f'{PLACEHOLDER_ROOT}, which must be replaced before submitting)')
  parser.add_argument('--data', help='aclImdb folder or .tar.gz as the cluster sees it, or a '
                      'folder of span-N/ drops (default: PIPELINE_ROOT/data/aclImdb)')
  parser.add_argument('--span-window', type=int, metavar='N',
                      help='Retrain on span drops: --data is a folder of span-1/, span-2/, ...; '
                           'each run trains on the newest N (use with --schedule)')
  parser.add_argument('--serving-dir', help='Where the Pusher writes versioned SavedModels '
                      '(default: PIPELINE_ROOT/serving_model/PIPELINE)')
  parser.add_argument('--schema', default=IMAGE_SCHEMA_PATH,
                      help=f'The curated schema as the tasks see it (default: {IMAGE_SCHEMA_PATH}, '
                           'in the image)')
  parser.add_argument('--image', default=os.environ.get('KFP_IMAGE', DEFAULT_IMAGE),
                      help='Container image built from Dockerfile: it runs every task and the '
                           "workers of a Dataflow, Flink or Spark runner (default: $KFP_IMAGE, "
                           f'else {DEFAULT_IMAGE})')
  parser.add_argument('--beam-args', default=None,
                      help="Beam pipeline args in one string, e.g. '--runner=DataflowRunner "
                           "--project=P --region=R --temp_location=gs://B/tmp' (default: the "
                           "preset's DirectRunner args)")
  parser.add_argument('--host', help='Open-source KFP API endpoint: submit the .yaml there')
  parser.add_argument('--experiment', default=configs.PIPELINE_NAME,
                      help='KFP experiment of submitted runs')
  parser.add_argument('--project', help='Google Cloud project: submit the .json to Vertex AI '
                      'Pipelines there (with --region)')
  parser.add_argument('--region', help='Vertex AI region, e.g. us-central1')
  parser.add_argument('--service-account', help='Vertex AI: the service account runs act as')
  parser.add_argument('--trainer-replicas', type=int, metavar='N',
                      help='Vertex AI: train each Trainer as a Vertex AI Training job of N machines '
                           '(data-parallel; needs a .json --output, --project and --region). '
                           'Default: in its pipeline task, on one machine')
  parser.add_argument('--trainer-machine-type', default='n1-standard-8',
                      help='With --trainer-replicas: the machine type of each replica '
                           '(default: n1-standard-8)')
  parser.add_argument('--trainer-accelerator', metavar='TYPE:COUNT',
                      help='Accelerators per Trainer: with a .yaml, a Kubernetes resource on its '
                           'pod, e.g. nvidia.com/gpu:1; with --trainer-replicas, per replica, '
                           'e.g. NVIDIA_TESLA_T4:1')
  for kind, (cpu, memory) in DEFAULT_RESOURCES.items():
    parser.add_argument(f'--{kind}-cpu', type=float, default=cpu, metavar='CPUS',
                        help=f'CPU request and limit of each {_KIND_NAMES[kind]} task '
                             f'(default: {cpu:g})')
    parser.add_argument(f'--{kind}-memory', type=float, default=memory, metavar='GB',
                        help=f'Memory request and limit of each {_KIND_NAMES[kind]} task, in GB '
                             f'(default: {memory:g})')
  parser.add_argument('--secret-env', action='append', default=[], metavar='SECRET:KEY[,KEY...]',
                      help='Kubeflow Pipelines: put these keys of the Kubernetes secret SECRET '
                           'into every task\'s environment, each under its own name, e.g. '
                           'minio-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY (repeatable)')
  parser.add_argument('--compile-only', action='store_true',
                      help='Write --output and submit nothing, even with --host or --project')
  parser.add_argument('--schedule', help="With --host or --project: a recurring run on this cron "
                      "expression (KFP: 6 fields, seconds first, '0 0 3 * * *'; Vertex AI: 5 "
                      "fields, '0 3 * * *'; both daily at 03:00)")


# Each kind of task's CPU and memory (GB), requested and limited alike. Beam tasks hold a
# split's shuffle in memory on the DirectRunner; the Trainers hold the model and its batches.
DEFAULT_RESOURCES = {'beam': (4.0, 16.0), 'trainer': (8.0, 32.0), 'task': (1.0, 4.0)}
_KIND_NAMES = {'beam': 'Beam (ImdbExampleGen, StatisticsGen, Transform, Evaluator)',
               'trainer': 'Trainer', 'task': 'other'}


@dataclasses.dataclass(frozen=True)
class TaskResources:
  """What a task's pod requests and is limited to: CPUs, memory in GB, accelerators."""
  cpu: float
  memory_gb: float
  accelerator: Optional[Tuple[str, int]] = None  # (Kubernetes resource or Vertex type, count).

  def to_spec(self) -> Dict[str, Any]:
    """The pipeline spec's `ResourceSpec`, which both KFP's driver and Vertex AI read."""
    spec: Dict[str, Any] = {'cpuLimit': self.cpu, 'cpuRequest': self.cpu,
                            'memoryLimit': self.memory_gb, 'memoryRequest': self.memory_gb}
    if self.accelerator:
      spec['accelerator'] = {'type': self.accelerator[0], 'count': str(self.accelerator[1])}
    return spec


def _target(args: argparse.Namespace) -> str:
  """'yaml' (Kubeflow Pipelines) or 'json' (Vertex AI Pipelines), from the output's suffix."""
  return 'json' if args.output.endswith('.json') else 'yaml'


def usage_error(args: argparse.Namespace) -> Optional[str]:
  """What is wrong with a combination of flags, or None."""
  if not args.output.endswith(('.yaml', '.yml', '.json')):
    return f'--output {args.output}: write a .yaml (Kubeflow Pipelines) or .json (Vertex AI)'
  if args.host and args.project:
    return '--host (Kubeflow Pipelines) and --project (Vertex AI): pick one'
  if args.host and _target(args) != 'yaml':
    return '--host needs a .yaml --output: kfp.Client reads YAML pipeline specs'
  if args.project and _target(args) != 'json':
    return '--project needs a .json --output: Vertex AI Pipelines takes the PipelineJob'
  if args.project and not args.region:
    return '--project needs --region: the Vertex AI region to run in, e.g. us-central1'
  if args.trainer_replicas is not None:
    problem = _trainer_replicas_error(args)
    if problem:
      return problem
  elif args.trainer_accelerator and _target(args) == 'json':
    return '--trainer-accelerator needs --trainer-replicas: it describes the Vertex AI replicas'
  elif args.trainer_accelerator and not re.fullmatch(_KUBERNETES_ACCELERATOR,
                                                     args.trainer_accelerator):
    return (f'--trainer-accelerator {args.trainer_accelerator!r}: write the Kubernetes resource '
            'and a count, e.g. nvidia.com/gpu:1')
  problem = _resources_error(args) or _secret_env_error(args)
  if problem:
    return problem
  if args.schedule and not (args.host or args.project):
    return '--schedule needs --host (Kubeflow Pipelines) or --project (Vertex AI)'
  if args.schedule and len(args.schedule.split()) != _CRON_FIELDS[_target(args)]:
    return (f'--schedule {args.schedule!r}: '
            + ("Kubeflow Pipelines takes 6 cron fields, seconds first, e.g. '0 0 3 * * *'"
               if _target(args) == 'yaml' else
               "Vertex AI takes 5 cron fields, minute first, e.g. '0 3 * * *'"))
  if (args.host or args.project) and not args.compile_only:
    return _submitted_root_error(args.pipeline_root)
  return None


_KUBERNETES_ACCELERATOR = r'[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-z0-9]([a-z0-9._-]*[a-z0-9])?:[1-9]\d*'


def _submitted_root_error(root: str) -> Optional[str]:
  """What is wrong with the pipeline root of a run to submit, or None.

  The run request carries the root, since the backend never reads the spec's (a run without one
  writes to minio://, which neither TensorFlow nor Beam opens); the tasks write under it.
  """
  if not root:
    return '--pipeline-root is empty: pass the bucket the runs write to, e.g. gs://BUCKET/imdb-bert'
  if root.startswith(PLACEHOLDER_ROOT):
    return f'--pipeline-root is still the placeholder {PLACEHOLDER_ROOT}: pass your bucket'
  if not root.startswith(WRITABLE_ROOTS):
    return (f'--pipeline-root {root}: the tasks write there through TensorFlow and Beam, which '
            f'open {", ".join(WRITABLE_ROOTS)} only')
  return None


def _resources_error(args: argparse.Namespace) -> Optional[str]:
  """What is wrong with the tasks' CPU and memory flags, or None."""
  for kind in DEFAULT_RESOURCES:
    for unit in ('cpu', 'memory'):
      value = getattr(args, f'{kind}_{unit}')
      if not value > 0:
        return f'--{kind}-{unit} {value:g}: give a positive number'
  return None


def _secret_env_error(args: argparse.Namespace) -> Optional[str]:
  """What is wrong with the --secret-env flags, or None."""
  if args.secret_env and _target(args) != 'yaml':
    return ('--secret-env needs a .yaml --output: Vertex AI tasks act as their service account '
            '(--service-account)')
  for value in args.secret_env:
    if not re.fullmatch(r'[a-z0-9]([a-z0-9.-]*[a-z0-9])?:[A-Za-z_][A-Za-z0-9_]*'
                        r'(,[A-Za-z_][A-Za-z0-9_]*)*', value):
      return (f'--secret-env {value!r}: write SECRET:KEY[,KEY...], e.g. '
              'minio-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY')
  return None


def _trainer_replicas_error(args: argparse.Namespace) -> Optional[str]:
  """What is wrong with the flags of multi-replica Trainers, or None."""
  if _target(args) != 'json':
    return ('--trainer-replicas needs a .json --output: the Trainers run as Vertex AI Training '
            'jobs; open-source Kubeflow Pipelines trains each Trainer in its task, on one machine')
  if not (args.project and args.region):
    return ('--trainer-replicas needs --project and --region: the Google Cloud project and '
            'Vertex AI region that run the Trainers\' jobs')
  if args.trainer_replicas < 1:
    return f'--trainer-replicas {args.trainer_replicas}: give 1 or more machines'
  if args.trainer_accelerator and not re.fullmatch(r'[A-Z0-9_]+:[1-9]\d*', args.trainer_accelerator):
    return (f'--trainer-accelerator {args.trainer_accelerator!r}: write TYPE:COUNT, e.g. '
            'NVIDIA_TESLA_T4:1')
  return None


def vertex_training(args: argparse.Namespace) -> Optional[VertexTraining]:
  """The Trainers' Vertex AI Training jobs that the flags ask for; None: one machine each."""
  if args.trainer_replicas is None:
    return None
  accelerator, count = (args.trainer_accelerator or ':0').split(':')
  return VertexTraining(
      project=args.project, region=args.region, image=args.image,
      replicas=args.trainer_replicas, machine_type=args.trainer_machine_type,
      accelerator_type=accelerator or None, accelerator_count=int(count),
      service_account=args.service_account)


def worker_image_args(beam_args: Sequence[str], image: str) -> List[str]:
  """`beam_args`, plus what puts a remote runner's workers in `image`, unless they already say.

  Beam's workers import the project's DoFns and `preprocessing_fn` by name, so they must run in
  an image that has the project installed: Dataflow takes it as `--sdk_container_image`, a
  portable runner (Flink, Spark) in a Docker environment as `--environment_config`. The
  DirectRunner runs in the task's own container and needs nothing.
  """
  options = pipeline_options.PipelineOptions(list(beam_args))
  runner = (options.view_as(pipeline_options.StandardOptions).runner or '').lower()
  runner = runner[:-len('runner')] if runner.endswith('runner') else runner
  portable = options.view_as(pipeline_options.PortableOptions)
  if runner == 'dataflow' and not options.view_as(pipeline_options.WorkerOptions).sdk_container_image:
    return [*beam_args, f'--sdk_container_image={image}']
  if (runner in _PORTABLE_RUNNERS and (portable.environment_type or 'DOCKER').upper() == 'DOCKER'
      and not portable.environment_config):
    return [*beam_args, '--environment_type=DOCKER', f'--environment_config={image}']
  return list(beam_args)


def pipeline_root(root: str, name: str) -> str:
  """The root of pipeline `name`'s artifacts under `--pipeline-root` `root`: ROOT/pipelines/NAME."""
  return f"{root.rstrip('/')}/pipelines/{name}"


def compile_pipeline(args: argparse.Namespace) -> str:
  """Writes the pipeline spec to `args.output`; returns the pipeline's name."""
  preset = configs.PRESETS[args.preset]
  name = configs.pipeline_name(args.preset)
  root = args.pipeline_root.rstrip('/')
  beam_args = preset.beam_pipeline_args if args.beam_args is None else shlex.split(args.beam_args)
  pipeline = create_pipeline(
      pipeline_name=name,
      pipeline_root=pipeline_root(args.pipeline_root, name),
      corpus_path=args.data or f'{root}/data/aclImdb',
      serving_model_dir=args.serving_dir or f'{root}/serving_model/{name}',
      span_window=args.span_window,
      vertex_training=vertex_training(args),
      **{**preset.pipeline_args(), 'beam_pipeline_args': worker_image_args(beam_args, args.image),
         'schema_path': args.schema})
  # Pipeline spec schema 2.1: the tasks read their settings from `parameterValues`, the only
  # field open-source KFP fills (2.0's tasks read the deprecated `parameters`).
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=args.image, use_pipeline_spec_2_1=True))
  job = runner.run(pipeline, write_out=False)
  spec = job['pipelineSpec']
  for component in pipeline.components:
    _container(spec, component.id).update(
        command=ENTRYPOINT, resources=task_resources(component, args).to_spec())
  uncached = ALWAYS_RUN + ((FINGERPRINTS_IN_HOOK,) if _target(args) == 'yaml' else ())
  for task_id in uncached:
    _run_every_time(spec, task_id)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w') as spec_file:
    if _target(args) == 'json':
      json.dump(job, spec_file, indent=2, sort_keys=True)
    else:
      documents = [dict(spec, defaultPipelineRoot=job['runtimeConfig']['gcsOutputDirectory'])]
      if args.secret_env:
        documents.append(kubernetes_platform_spec(spec, args.secret_env))
      yaml.safe_dump_all(documents, spec_file, sort_keys=True)
  return name


def _container(spec: Dict[str, Any], task_id: str) -> Dict[str, Any]:
  """The container executor of task `task_id` in a compiled pipeline spec."""
  component = spec['components'][spec['root']['dag']['tasks'][task_id]['componentRef']['name']]
  return spec['deploymentSpec']['executors'][component['executorLabel']]['container']


def task_resources(component: Any, args: argparse.Namespace) -> TaskResources:
  """What the flags give `component`'s task: a Trainer's, a Beam task's, or any other's.

  A Trainer that runs as a Vertex AI Training job only waits for it, so it gets the others'.
  """
  if (isinstance(component.spec, standard_component_specs.TrainerSpec)
      and args.trainer_replicas is None):
    accelerator = None
    if args.trainer_accelerator:
      resource, count = args.trainer_accelerator.rsplit(':', 1)
      accelerator = (resource, int(count))
    return TaskResources(args.trainer_cpu, args.trainer_memory, accelerator)
  kind = 'beam' if isinstance(component.executor_spec, executor_spec.BeamExecutorSpec) else 'task'
  return TaskResources(getattr(args, f'{kind}_cpu'), getattr(args, f'{kind}_memory'))


def _run_every_time(spec: Dict[str, Any], task_id: str) -> None:
  """Makes `task_id` run on every run, never from KFP's cache.

  Its caching is off in the spec, and it takes the run's id as a parameter, so that a run-level
  `enable_caching=True` (which kfp.Client writes into every task) still finds no earlier run
  with its cache key. The entrypoint removes the parameter before TFX sees it.
  """
  task = spec['root']['dag']['tasks'][task_id]
  task.pop('cachingOptions', None)
  task.setdefault('inputs', {}).setdefault('parameters', {})[kfp_entrypoint.RUN_ID_PARAMETER] = {
      'runtimeValue': {'constant': kfp_entrypoint.RUN_ID_PLACEHOLDER}}
  component = spec['components'][task['componentRef']['name']]
  component.setdefault('inputDefinitions', {}).setdefault('parameters', {})[
      kfp_entrypoint.RUN_ID_PARAMETER] = {'parameterType': 'STRING'}


def kubernetes_platform_spec(spec: Dict[str, Any], secret_env: Sequence[str]) -> Dict[str, Any]:
  """The kfp-kubernetes platform spec that puts secrets' keys into every task's environment.

  The launcher opens buckets with its own credentials and hands the container none, so the
  tasks, which write with TensorFlow and Beam, need theirs (`secretAsEnv`, read by the driver in
  kubeflow/pipelines `backend/src/v2/driver/k8s.go`).

  Args:
    secret_env: `SECRET:KEY[,KEY...]` each; a key becomes the variable of the same name.
  """
  secrets = []
  for value in secret_env:
    name, keys = value.split(':', 1)
    secrets.append({'secretName': name, 'keyToEnv': [{'secretKey': key, 'envVar': key}
                                                     for key in keys.split(',')]})
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
      label: {'secretAsEnv': secrets} for label in spec['deploymentSpec']['executors']}}}}}


def submit_to_kubeflow(args: argparse.Namespace, name: str) -> str:
  """Starts a run of the compiled .yaml on `--host`, or a recurring run with `--schedule`.

  The request carries the pipeline root, the one the spec was compiled with: the backend
  never reads the spec's own, and without one a run writes to minio://.

  Raises:
    console.UserError: the endpoint cannot be reached or refused the request.
  """
  import kfp  # pylint: disable=import-outside-toplevel  # Only submitting needs the client.

  root = pipeline_root(args.pipeline_root, name)
  try:
    client = kfp.Client(host=args.host)
    experiment = client.create_experiment(args.experiment)
    if args.schedule:
      job = client.create_recurring_run(
          experiment_id=experiment.experiment_id, job_name=name, cron_expression=args.schedule,
          pipeline_package_path=args.output, no_catchup=True, max_concurrency=1,
          pipeline_root=root)
      return f'recurring run {job.recurring_run_id} on {args.schedule!r}'
    run = client.create_run_from_pipeline_package(args.output, experiment_name=args.experiment,
                                                  pipeline_root=root)
    return f'run {run.run_id}'
  except Exception as error:  # pylint: disable=broad-except  # kfp raises many kinds.
    raise console.UserError(f'Kubeflow Pipelines at {args.host} did not take the pipeline: '
                            f'{_first_line(error)} (is the endpoint right, and are you signed '
                            'in to it?)') from error


def submit_to_vertex(args: argparse.Namespace, name: str) -> str:
  """Starts a Vertex AI PipelineJob of the compiled .json, or a schedule with `--schedule`.

  Raises:
    console.UserError: no Google Cloud credentials, or Vertex AI refused the request.
  """
  import google.auth  # pylint: disable=import-outside-toplevel
  from google.auth import exceptions as auth_exceptions  # pylint: disable=import-outside-toplevel
  from google.cloud import aiplatform  # pylint: disable=import-outside-toplevel

  try:
    google.auth.default()
  except auth_exceptions.DefaultCredentialsError as error:
    raise console.UserError(
        'no Google Cloud credentials to submit to Vertex AI: run `gcloud auth '
        'application-default login` or set GOOGLE_APPLICATION_CREDENTIALS') from error
  try:
    job = aiplatform.PipelineJob(display_name=name, template_path=args.output,
                                 project=args.project, location=args.region)
    if args.schedule:
      schedule = job.create_schedule(cron=args.schedule, display_name=name,
                                     service_account=args.service_account)
      return f'schedule {schedule.resource_name} on {args.schedule!r}'
    job.submit(service_account=args.service_account)
    return f'pipeline job {job.resource_name}'
  except Exception as error:  # pylint: disable=broad-except  # google-api-core raises many kinds.
    raise console.UserError(f'Vertex AI in {args.project}/{args.region} did not take the '
                            f'pipeline: {_first_line(error)}') from error


def _first_line(error: Exception) -> str:
  lines = str(error).strip().splitlines()
  return f'{type(error).__name__}: {lines[0]}' if lines else type(error).__name__


def run(args: argparse.Namespace) -> int:
  """Compiles, and submits when `--host` or `--project` is given (unless `--compile-only`);
  returns the exit status."""
  name = compile_pipeline(args)
  print(f'wrote {args.output} ({name}, image {args.image})')
  if args.compile_only:
    return 0
  if args.host:
    print(f'submitted {submit_to_kubeflow(args, name)} to {args.host}')
  if args.project:
    print(f'submitted {submit_to_vertex(args, name)} to Vertex AI')
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=__doc__.split('\n\n', 1)[1])
  add_arguments(parser)
  parser.add_argument('--verbose', action='store_true',
                      help='Log TFX at INFO, and show the traceback of an error')
  args = parser.parse_args(argv)
  problem = usage_error(args)
  if problem:
    parser.error(problem)
  console.set_log_level(args.verbose)
  return console.exit_status(lambda: run(args), args.verbose)


if __name__ == '__main__':
  sys.exit(main())
