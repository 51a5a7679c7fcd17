"""imdb-bert: run the pipeline, use its models, report on a run, compile it for Kubeflow.

Examples:
  imdb-bert run --preset smoke --data ../shared/data/aclImdb_v1.tar.gz
  imdb-bert predict "What a wonderful film!" "Two hours I will never get back."
  echo "A quiet, moving story." | imdb-bert predict
  imdb-bert fill-mask "i have watched this [mask] and it was awesome"
  imdb-bert report && chromium tfx_root/reports/imdb-bert-default/index.html
  imdb-bert compile-kfp --output imdb-bert.yaml

Each command but compile-kfp works on the output directory of `run` (--output-dir, default
tfx_root) and the pipeline of one preset (--preset, default `default`).
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from pipeline import quiet

quiet.unless_verbose(sys.argv)  # Before TensorFlow loads.

import kubeflow_runner  # pylint: disable=wrong-import-position
import local_runner
from modules import inference
from pipeline import configs, console, summary
from tfx import v1 as tfx

_PREVIEW_CHARACTERS = 70


def _add_run_selection(parser: argparse.ArgumentParser) -> None:
  """Flags that pick the local run whose outputs a command reads."""
  parser.add_argument('--output-dir', default=local_runner.DEFAULT_OUTPUT_DIR,
                      help='What `imdb-bert run --output-dir` wrote to (default: tfx_root)')
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default',
                      help='Whose pipeline to read (default: default)')


def _metadata(args: argparse.Namespace):
  """The ML Metadata store of the preset's pipeline under --output-dir, which must exist."""
  path = local_runner.metadata_path(args.output_dir, args.preset)
  if not os.path.exists(path):
    raise console.UserError(
        f'no run of {configs.pipeline_name(args.preset)} under '
        f'{os.path.abspath(args.output_dir)}: run `imdb-bert run --preset {args.preset}` first, '
        'or pass --output-dir')
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(path)


def _latest_run(args: argparse.Namespace) -> summary.RunSummary:
  """The latest run of the preset's pipeline under --output-dir, from ML Metadata."""
  return summary.summarize(_metadata(args), configs.pipeline_name(args.preset))


def _served_model(args: argparse.Namespace) -> str:
  """--model, else the newest version pushed under --output-dir for --preset."""
  serving_dir = local_runner.serving_dir(args.output_dir, args.preset)
  model = args.model or summary.newest_pushed_model(serving_dir)
  if not model:
    raise console.UserError(f'no pushed model under {serving_dir}: run the pipeline until a model '
                            'is blessed, or pass --model PATH')
  return model


def _predict(args: argparse.Namespace) -> int:
  model = _served_model(args)
  texts = args.text or [line.rstrip('\n') for line in sys.stdin if line.strip()]
  if not texts:
    raise console.UserError('no text to score: pass reviews as arguments or one per line on stdin')
  blank = [number for number, text in enumerate(texts, 1) if not text.strip()]
  if blank:
    raise console.UserError(f'review {blank[0]} is empty: there is nothing to score (a served model '
                            'gives such text probability 0.5 and is_review false)')
  for text, (probability, label) in zip(texts, inference.predict(model, texts), strict=True):
    if args.json:
      print(json.dumps({'text': text, 'probability': probability, 'label': label}))
    else:
      preview = ' '.join(text.split())
      if len(preview) > _PREVIEW_CHARACTERS:
        preview = preview[:_PREVIEW_CHARACTERS - 3] + '...'
      print(f'{probability:.4f}  {"positive" if label else "negative"}  {preview}')
  return 0


def _fill_mask(args: argparse.Namespace) -> int:
  run = _latest_run(args)
  if 'PretrainTrainer' not in run.outputs:
    raise console.UserError(f'run {run.run_id} has no pretrained encoder (PretrainTrainer)')
  for sentence in args.sentence:
    tokens = inference.fill_mask(sentence, run.outputs['PretrainTrainer']['Model'],
                                 run.outputs['Transform']['TransformGraph'], args.top_k)
    print(sentence)
    for token, probability in tokens:
      print(f'  {probability:.4f}  {token}')
  return 0


def _report(args: argparse.Namespace) -> int:
  from pipeline import report  # Plotting libraries load only for this command.

  name = configs.pipeline_name(args.preset)
  page = report.write_report(_metadata(args), name,
                             args.out or os.path.join(args.output_dir, 'reports', name))
  print(f'wrote {page}')
  return 0


def _compile_kfp(args: argparse.Namespace) -> int:
  problem = kubeflow_runner.usage_error(args)
  if problem:
    raise console.UserError(problem)
  return kubeflow_runner.run(args)


def build_parser() -> argparse.ArgumentParser:
  """The `imdb-bert` parser and its subcommands."""
  parser = argparse.ArgumentParser(prog='imdb-bert', description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split('\n\n', 1)[1])
  commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
  verbose = argparse.ArgumentParser(add_help=False)
  verbose.add_argument('--verbose', action='store_true',
                       help='Log at INFO and show the traceback of an error')

  run = commands.add_parser(
      'run', help='Run the pipeline here (LocalDagRunner)', description=local_runner.__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  local_runner.add_arguments(run)
  run.set_defaults(handler=local_runner.run)

  predict = commands.add_parser(
      'predict', parents=[verbose], help='Score reviews with a pushed model',
      description='Probability that each review is positive, and its label, from the newest '
                  'pushed model (or --model). Reviews come from the arguments, else one per line '
                  'on stdin.')
  predict.add_argument('text', nargs='*', help='Reviews to score')
  predict.add_argument('--model', help='A pushed SavedModel folder (default: the newest version '
                       'under OUTPUT_DIR/serving_model/imdb-bert-PRESET/)')
  predict.add_argument('--json', action='store_true', help='One JSON object per review')
  _add_run_selection(predict)
  predict.set_defaults(handler=_predict)

  fill_mask = commands.add_parser(
      'fill-mask', parents=[verbose], help='Top tokens the pretrained encoder puts at [mask]',
      description='The tokens the latest run\'s pretrained encoder predicts at [mask], with '
                  'their probabilities.')
  fill_mask.add_argument('sentence', nargs='+', help='Sentences, each with one [mask]')
  fill_mask.add_argument('--top-k', type=int, default=5, help='How many tokens (default: 5)')
  _add_run_selection(fill_mask)
  fill_mask.set_defaults(handler=_fill_mask)

  report = commands.add_parser(
      'report', parents=[verbose], help='Write the HTML report of the latest run',
      description='A self-contained HTML page, with PNG plots beside it, on the latest run: data, '
                  'vocabulary, learning curves, evaluation per slice, the blessing and lineage.')
  report.add_argument('--out', help='Folder for index.html and the plots '
                      '(default: OUTPUT_DIR/reports/imdb-bert-PRESET)')
  _add_run_selection(report)
  report.set_defaults(handler=_report)

  compile_kfp = commands.add_parser(
      'compile-kfp', parents=[verbose], help='Compile (and submit) for Kubeflow Pipelines v2',
      description=kubeflow_runner.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  kubeflow_runner.add_arguments(compile_kfp)
  compile_kfp.set_defaults(handler=_compile_kfp)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  console.set_log_level(args.verbose)
  return console.exit_status(lambda: args.handler(args), args.verbose,
                             user_errors=(inference.InferenceError,))


if __name__ == '__main__':
  sys.exit(main())
