"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

Usage: python local_runner.py [--preset smoke|default] [--data PATH] [--output-dir DIR]
       python local_runner.py --span-window N --data DROPS   # scheduled retraining (cron)

Exit status: 0 the run ended (blessed or not); 1 the data gate stopped it; 2 no corpus; 3 refused
(another run is using the output directory, or it cannot be written).
"""

import argparse
import os
import sys

from tfx import v1 as tfx

from components.data_gate import DataAnomaliesError
from components.imdb_example_gen.corpus import CorpusError
from pipeline import configs, corpus, run_lock, summary
from pipeline.pipeline import create_pipeline

PIPELINE_NAME = 'imdb-bert'


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default')
  parser.add_argument('--data', help=f'aclImdb .tar.gz or folder (default: ${corpus.CORPUS_ENV}, '
                      'else download)')
  parser.add_argument('--output-dir', default='tfx_root',
                      help='Holds artifacts, ML Metadata and pushed models (default: tfx_root)')
  parser.add_argument('--span-window', type=int, metavar='N',
                      help='Retrain on span drops: --data is a folder of span-1/, span-2/, ... in '
                           'the aclImdb layout; train on the newest N, test on the newest')
  args = parser.parse_args()
  try:
    corpus_path = (corpus.resolve_drops(args.data) if args.span_window
                   else corpus.resolve_corpus(args.data))
  except CorpusError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2

  name = f'{PIPELINE_NAME}-{args.preset}'
  output_dir = os.path.abspath(args.output_dir)
  pipeline_root = os.path.join(output_dir, 'pipelines', name)
  try:
    with run_lock.exclusive_run(pipeline_root):
      metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(output_dir, 'metadata', name, 'metadata.db'))
      tfx.orchestration.LocalDagRunner().run(create_pipeline(
          pipeline_name=name,
          pipeline_root=pipeline_root,
          corpus_path=corpus_path,
          serving_model_dir=os.path.join(output_dir, 'serving_model', name),
          metadata_connection_config=metadata,
          span_window=args.span_window,
          **configs.PRESETS[args.preset].pipeline_args()))
  except run_lock.RunRefusedError as error:
    print(f'error: {error}', file=sys.stderr)
    return 3
  except DataAnomaliesError as error:
    print(f'error: the data gate stopped the run: {error}', file=sys.stderr)
    return 1
  print(summary.summarize(metadata, name).format())
  return 0


if __name__ == '__main__':
  sys.exit(main())
