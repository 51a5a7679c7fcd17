"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

Usage: python local_runner.py [--preset smoke|default] [--data PATH] [--output-dir DIR] [--verbose]
       python local_runner.py --span-window N --data DROPS   # scheduled retraining (cron)

Prints one line per component as it starts and ends, then a summary of the run.

Exit status: 0 the run ended (blessed or not); 1 the data gate stopped it; 2 no corpus; 3 refused
(another run is using the output directory, or it cannot be written).
"""

import argparse
import contextlib
import os
import sys
from typing import List, Optional

from pipeline import quiet

quiet.unless_verbose(sys.argv)  # Before TensorFlow loads.

from tfx import v1 as tfx  # pylint: disable=wrong-import-position

from pipeline import configs, console, corpus, run_lock, summary
from pipeline.pipeline import DataAnomaliesError, compile_for_local, create_pipeline

DEFAULT_OUTPUT_DIR = 'tfx_root'


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The runner's flags, on its own parser or on the `imdb-bert run` subcommand."""
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default',
                      help='Data size, model and training knobs (default: default)')
  parser.add_argument('--data', help=f'aclImdb .tar.gz or folder (default: ${corpus.CORPUS_ENV}, '
                      'else download)')
  parser.add_argument('--output-dir', default=DEFAULT_OUTPUT_DIR,
                      help='Holds artifacts, ML Metadata and pushed models (default: tfx_root)')
  parser.add_argument('--span-window', type=int, metavar='N',
                      help='Retrain on span drops: --data is a folder of span-1/, span-2/, ... in '
                           'the aclImdb layout; train on the newest N, test on the newest')
  parser.add_argument('--verbose', action='store_true',
                      help='Log TFX, Beam and TensorFlow at INFO, and show tracebacks')


def metadata_path(output_dir: str, preset: str) -> str:
  """The SQLite ML Metadata file of the preset's pipeline under `output_dir`."""
  return os.path.join(os.path.abspath(output_dir), 'metadata', configs.pipeline_name(preset),
                      'metadata.db')


def serving_dir(output_dir: str, preset: str) -> str:
  """Where the preset's pipeline pushes model versions."""
  return os.path.join(os.path.abspath(output_dir), 'serving_model', configs.pipeline_name(preset))


def run(args: argparse.Namespace) -> int:
  """Runs the pipeline as `args` say; returns the exit status."""
  try:
    corpus_path = (corpus.resolve_drops(args.data) if args.span_window
                   else corpus.resolve_corpus(args.data))
  except corpus.CorpusError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2

  name = configs.pipeline_name(args.preset)
  pipeline_root = os.path.join(os.path.abspath(args.output_dir), 'pipelines', name)
  try:
    with run_lock.exclusive_run(pipeline_root):
      # Inside the lock: this makes the metadata folder, which may not be writable.
      metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path(args.output_dir, args.preset))
      quiet = contextlib.nullcontext() if args.verbose else console.quiet_native_stderr()
      with quiet, console.ProgressPrinter(metadata, name):
        tfx.orchestration.LocalDagRunner().run_with_ir(compile_for_local(create_pipeline(
            pipeline_name=name,
            pipeline_root=pipeline_root,
            corpus_path=corpus_path,
            serving_model_dir=serving_dir(args.output_dir, args.preset),
            metadata_connection_config=metadata,
            span_window=args.span_window,
            **configs.PRESETS[args.preset].pipeline_args())))
  except run_lock.RunRefusedError as error:
    print(f'error: {error}', file=sys.stderr)
    return 3
  except DataAnomaliesError as error:
    print(f'error: the data gate stopped the run: {error}', file=sys.stderr)
    return 1
  print(summary.summarize(metadata, name).format())
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split('\n\n', 1)[1])
  add_arguments(parser)
  args = parser.parse_args(argv)
  console.set_log_level(args.verbose)
  return console.exit_status(lambda: run(args), args.verbose)


if __name__ == '__main__':
  sys.exit(main())
