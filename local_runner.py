"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

Usage: python local_runner.py [--preset smoke|default] [--data PATH] [--output-dir DIR]
"""

import argparse
import os
import sys

from tfx import v1 as tfx

from components.data_gate import DataAnomaliesError
from components.imdb_example_gen.corpus import CorpusError
from pipeline import configs, corpus, summary
from pipeline.pipeline import create_pipeline

PIPELINE_NAME = 'imdb-bert'


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default')
  parser.add_argument('--data', help=f'aclImdb .tar.gz or folder (default: ${corpus.CORPUS_ENV}, '
                      'else download)')
  parser.add_argument('--output-dir', default='tfx_root',
                      help='Holds artifacts, ML Metadata and pushed models (default: tfx_root)')
  args = parser.parse_args()
  try:
    corpus_path = corpus.resolve_corpus(args.data)
  except CorpusError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2

  name = f'{PIPELINE_NAME}-{args.preset}'
  output_dir = os.path.abspath(args.output_dir)
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      os.path.join(output_dir, 'metadata', name, 'metadata.db'))
  try:
    tfx.orchestration.LocalDagRunner().run(create_pipeline(
        pipeline_name=name,
        pipeline_root=os.path.join(output_dir, 'pipelines', name),
        corpus_path=corpus_path,
        serving_model_dir=os.path.join(output_dir, 'serving_model', name),
        metadata_connection_config=metadata,
        **configs.PRESETS[args.preset].pipeline_args()))
  except DataAnomaliesError as error:
    print(f'error: the data gate stopped the run: {error}', file=sys.stderr)
    return 1
  print(summary.summarize(metadata, name).format())
  return 0


if __name__ == '__main__':
  sys.exit(main())
