"""Compiles the pipeline for Kubeflow Pipelines v2; optionally submits it once or on a schedule.

Usage:
  python kubeflow_runner.py --output imdb-bert.yaml            # compile only, no cluster needed
  python kubeflow_runner.py --output imdb-bert.yaml \\
      --pipeline-root gs://BUCKET/imdb-bert --image REGISTRY/imdb-bert-tfx:0.1.0 \\
      --beam-args '--runner=DataflowRunner --project=P --temp_location=gs://BUCKET/tmp' \\
      --host https://KFP_HOST [--schedule '0 0 3 * * *']

A `.yaml` output is a KFP pipeline spec (for `kfp.Client`); a `.json` output is the PipelineJob
that Vertex AI Pipelines takes.
"""

import argparse
import json
import os
import shlex
import sys
from typing import List, Optional

import yaml
from tfx import v1 as tfx

from pipeline import configs
from pipeline.pipeline import create_pipeline

# GCS bucket names are lower case, so this placeholder can never name somebody's bucket.
PLACEHOLDER_ROOT = 'gs://YOUR-BUCKET/imdb-bert'
DEFAULT_IMAGE = 'imdb-bert-tfx:latest'  # What `docker build -t imdb-bert-tfx .` tags.
# Where the Dockerfile puts the project inside the image (its WORKDIR).
IMAGE_PROJECT_DIR = '/imdb-bert-tfx'
IMAGE_SCHEMA_PATH = f'{IMAGE_PROJECT_DIR}/pipeline/schema/schema.pbtxt'


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The runner's flags, on its own parser or on the `imdb-bert compile-kfp` subcommand."""
  parser.add_argument('--output', required=True,
                      help='Pipeline file to write: .yaml (KFP) or .json (Vertex AI PipelineJob)')
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
                      '(default: PIPELINE_ROOT/serving_model)')
  parser.add_argument('--image', default=os.environ.get('KFP_IMAGE', DEFAULT_IMAGE),
                      help='Container image built from Dockerfile '
                           f'(default: $KFP_IMAGE, else {DEFAULT_IMAGE})')
  parser.add_argument('--beam-args', default=None,
                      help="Beam pipeline args in one string, e.g. '--runner=FlinkRunner "
                           "--flink_master=HOST:8081' (default: the preset's DirectRunner args)")
  parser.add_argument('--host', help='KFP API endpoint: submit the compiled pipeline there')
  parser.add_argument('--schedule', help="With --host: a recurring run on this cron expression "
                      "(KFP's 6 fields, seconds first, e.g. '0 0 3 * * *' daily at 03:00)")
  parser.add_argument('--experiment', default=configs.PIPELINE_NAME,
                      help='KFP experiment of submitted runs')


def usage_error(args: argparse.Namespace) -> Optional[str]:
  """What is wrong with a combination of flags, or None."""
  if args.schedule and not args.host:
    return '--schedule needs --host'
  if args.host and not args.output.endswith(('.yaml', '.yml')):
    return '--host needs a .yaml --output: kfp.Client reads YAML pipeline specs'
  if args.host and args.pipeline_root.startswith(PLACEHOLDER_ROOT):
    return f'--pipeline-root is still the placeholder {PLACEHOLDER_ROOT}: pass your bucket'
  return None


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
      **{**preset.pipeline_args(), 'beam_pipeline_args': beam_args,
         'schema_path': IMAGE_SCHEMA_PATH})
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image))
  job = runner.run(pipeline, write_out=False)
  with open(args.output, 'w') as spec_file:
    if args.output.endswith('.json'):
      json.dump(job, spec_file, indent=2, sort_keys=True)
    else:
      spec = dict(job['pipelineSpec'],
                  defaultPipelineRoot=job['runtimeConfig']['gcsOutputDirectory'])
      yaml.safe_dump(spec, spec_file, sort_keys=True)
  return name


def submit(args: argparse.Namespace, name: str) -> str:
  """Starts a run of the compiled pipeline, or a recurring run when `--schedule` is given.

  Runs write under the spec's default pipeline root, the one it was compiled with.
  """
  import kfp  # Only submitting needs the client.

  client = kfp.Client(host=args.host)
  if args.schedule:
    experiment = client.create_experiment(args.experiment)
    job = client.create_recurring_run(
        experiment_id=experiment.experiment_id, job_name=name, cron_expression=args.schedule,
        pipeline_package_path=args.output, no_catchup=True)
    return f'recurring run {job.recurring_run_id} on {args.schedule!r}'
  run = client.create_run_from_pipeline_package(args.output, experiment_name=args.experiment)
  return f'run {run.run_id}'


def run(args: argparse.Namespace) -> int:
  """Compiles, and submits when `--host` is given; returns the exit status."""
  name = compile_pipeline(args)
  print(f'wrote {args.output} ({name}, image {args.image})')
  if args.host:
    print(f'submitted {submit(args, name)} to {args.host}')
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=__doc__.split('\n\n', 1)[1])
  add_arguments(parser)
  args = parser.parse_args(argv)
  problem = usage_error(args)
  if problem:
    parser.error(problem)
  return run(args)


if __name__ == '__main__':
  sys.exit(main())
