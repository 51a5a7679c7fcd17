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
project's image. With `--trainer-replicas`, each Trainer's task starts a Vertex AI Training job
of that many replicas and waits for it; open-source Kubeflow Pipelines trains on one replica.
"""

import argparse
import json
import os
import re
import shlex
import sys
from typing import List, Optional, Sequence

from pipeline import quiet

quiet.unless_verbose(sys.argv)  # Before TensorFlow loads.

import yaml  # pylint: disable=wrong-import-position
from apache_beam.options import pipeline_options  # pylint: disable=wrong-import-position
from tfx import v1 as tfx  # pylint: disable=wrong-import-position

from pipeline import configs, console  # pylint: disable=wrong-import-position
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
                      help='With --trainer-replicas: accelerators per replica, e.g. NVIDIA_TESLA_T4:1')
  parser.add_argument('--compile-only', action='store_true',
                      help='Write --output and submit nothing, even with --host or --project')
  parser.add_argument('--schedule', help="With --host or --project: a recurring run on this cron "
                      "expression (KFP: 6 fields, seconds first, '0 0 3 * * *'; Vertex AI: 5 "
                      "fields, '0 3 * * *'; both daily at 03:00)")


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
  elif args.trainer_accelerator:
    return '--trainer-accelerator needs --trainer-replicas: it describes the Vertex AI replicas'
  if args.schedule and not (args.host or args.project):
    return '--schedule needs --host (Kubeflow Pipelines) or --project (Vertex AI)'
  if args.schedule and len(args.schedule.split()) != _CRON_FIELDS[_target(args)]:
    return (f'--schedule {args.schedule!r}: '
            + ("Kubeflow Pipelines takes 6 cron fields, seconds first, e.g. '0 0 3 * * *'"
               if _target(args) == 'yaml' else
               "Vertex AI takes 5 cron fields, minute first, e.g. '0 3 * * *'"))
  if ((args.host or args.project) and not args.compile_only
      and args.pipeline_root.startswith(PLACEHOLDER_ROOT)):
    return f'--pipeline-root is still the placeholder {PLACEHOLDER_ROOT}: pass your bucket'
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


def compile_pipeline(args: argparse.Namespace) -> str:
  """Writes the pipeline spec to `args.output`; returns the pipeline's name."""
  preset = configs.PRESETS[args.preset]
  name = configs.pipeline_name(args.preset)
  root = args.pipeline_root.rstrip('/')
  beam_args = preset.beam_pipeline_args if args.beam_args is None else shlex.split(args.beam_args)
  pipeline = create_pipeline(
      pipeline_name=name,
      pipeline_root=f'{root}/pipelines/{name}',
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
  uncached = ALWAYS_RUN + ((FINGERPRINTS_IN_HOOK,) if _target(args) == 'yaml' else ())
  for task_id in uncached:
    job['pipelineSpec']['root']['dag']['tasks'][task_id].pop('cachingOptions', None)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w') as spec_file:
    if _target(args) == 'json':
      json.dump(job, spec_file, indent=2, sort_keys=True)
    else:
      spec = dict(job['pipelineSpec'],
                  defaultPipelineRoot=job['runtimeConfig']['gcsOutputDirectory'])
      yaml.safe_dump(spec, spec_file, sort_keys=True)
  return name


def submit_to_kubeflow(args: argparse.Namespace, name: str) -> str:
  """Starts a run of the compiled .yaml on `--host`, or a recurring run with `--schedule`.

  Runs write under the spec's default pipeline root, the one it was compiled with.

  Raises:
    console.UserError: the endpoint cannot be reached or refused the request.
  """
  import kfp  # pylint: disable=import-outside-toplevel  # Only submitting needs the client.

  try:
    client = kfp.Client(host=args.host)
    experiment = client.create_experiment(args.experiment)
    if args.schedule:
      job = client.create_recurring_run(
          experiment_id=experiment.experiment_id, job_name=name, cron_expression=args.schedule,
          pipeline_package_path=args.output, no_catchup=True, max_concurrency=1)
      return f'recurring run {job.recurring_run_id} on {args.schedule!r}'
    run = client.create_run_from_pipeline_package(args.output, experiment_name=args.experiment)
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
