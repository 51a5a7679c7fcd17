"""What users see: the `imdb-bert` console script, progress lines, and the run report."""

import html
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, SMOKE_PIPELINE

pytestmark = pytest.mark.slow  # The command in subprocesses, and two pipeline runs.

# The console script pip installed from pyproject.toml, beside this interpreter.
IMDB_BERT = os.path.join(os.path.dirname(sys.executable), 'imdb-bert')
SUBCOMMANDS = {'run': ('--preset', '--data', '--output-dir', '--span-window', '--verbose'),
               'predict': ('--model', '--json', '--output-dir', '--preset', '--verbose'),
               'fill-mask': ('--top-k', '--output-dir', '--preset', '--verbose'),
               'report': ('--out', '--output-dir', '--preset', '--verbose'),
               'compile-kfp': ('--output', '--pipeline-root', '--image', '--beam-args', '--host',
                               '--schedule', '--trainer-replicas', '--compile-only', '--verbose')}


def _imdb_bert(*args, stdin=None):
  return subprocess.run([IMDB_BERT, *map(str, args)], cwd=REPO_ROOT, input=stdin,
                        capture_output=True, text=True)


def _on_smoke_run(output_dir):
  return ('--output-dir', output_dir, '--preset', 'smoke')


@pytest.mark.parametrize('command', sorted(SUBCOMMANDS))
def test_help_of_each_subcommand_lists_its_flags(command):
  result = _imdb_bert(command, '--help')
  assert result.returncode == 0, result.stderr
  for flag in SUBCOMMANDS[command]:
    assert flag in result.stdout, (command, flag)


def _ended(stdout):
  """{component: what its progress line says after the time} of each component that ended."""
  return {match.group(1): match.group(2) for match in
          re.finditer(r'^\[\d\d:\d\d:\d\d\] (\S+) +(?:done|cached) in [\d.]+ s(.*)$', stdout, re.M)}


def test_each_component_prints_a_line_when_it_ends_with_its_key_output(two_runs):
  _, (stdout, first), (second_stdout, _) = two_runs
  ended = _ended(stdout)
  assert set(ended) == {component.component_id for component in first.components}
  counts = first.example_counts
  assert f'train {counts["train"]:,}, eval {counts["eval"]:,}, test 200' in ended['ImdbExampleGen']
  assert re.search(r'vocabulary \d+ tokens', ended['Transform'])
  assert 'val_masked_accuracy' in ended['PretrainTrainer']
  assert 'val_accuracy' in ended['ClassifierTrainer']
  accuracy = first.test_metrics['binary_accuracy']
  assert f'test binary_accuracy {accuracy:.4f}' in ended['Evaluator'] and 'blessed' in ended['Evaluator']
  assert f'pushed {first.pushed_to}' in ended['Pusher']
  assert re.search(r'^\[[\d:]+\] Transform +cached in', second_stdout, re.M)
  assert ended['LatestPushedModel'] == ''  # Nothing served before the first push.
  assert _ended(second_stdout)['LatestPushedModel'] == f': served {first.pushed_to}'


def test_predict_scores_arguments_and_stdin_with_the_newest_pushed_model(two_runs):
  output_dir, (_, first), _ = two_runs
  reviews = ['A wonderful, superb masterpiece! I loved it.', 'Awful and boring, a waste.']
  result = _imdb_bert('predict', *reviews, *_on_smoke_run(output_dir))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert [line.split()[1] for line in lines] == ['positive', 'negative']
  assert all(0.0 <= float(line.split()[0]) <= 1.0 for line in lines)

  piped = _imdb_bert('predict', '--json', '--model', first.pushed_to, *_on_smoke_run(output_dir),
                     stdin='\n'.join(reviews) + '\n')
  assert piped.returncode == 0, piped.stderr[-3000:]
  scored = [json.loads(line) for line in piped.stdout.strip().splitlines()]
  assert [row['text'] for row in scored] == reviews
  assert [row['label'] for row in scored] == [1, 0]
  assert [f'{row["probability"]:.4f}' for row in scored] == [line.split()[0] for line in lines]


def test_fill_mask_lists_top_tokens_of_the_pretrained_encoder(two_runs):
  output_dir, _, _ = two_runs
  result = _imdb_bert('fill-mask', 'the [mask] was superb', '--top-k', 3, *_on_smoke_run(output_dir))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert lines[0] == 'the [mask] was superb'
  probabilities = [float(line.split()[0]) for line in lines[1:]]
  assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


@pytest.mark.parametrize('args, message', [
    (('predict', 'fine film'), 'error: no pushed model under '),
    (('predict', 'fine film', ' \t', '--model', 'any'), 'error: review 2 is empty: '),
    (('fill-mask', 'the [mask] was fine'), 'error: no run of imdb-bert-default under '),
    (('report',), 'error: no run of imdb-bert-default under '),
    (('compile-kfp', '--output', 'x.yaml', '--schedule', '0 0 3 * * *'),
     'error: --schedule needs --host'),
])
def test_errors_are_one_line_and_verbose_adds_the_traceback(args, message, tmp_path):
  no_run = tmp_path / 'no-run'
  if args[0] != 'compile-kfp':
    args += ('--output-dir', no_run)
  result = _imdb_bert(*args)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [result.stderr.strip()]
  assert result.stderr.startswith(message), result.stderr
  verbose = _imdb_bert(*args, '--verbose')
  assert verbose.returncode == 1 and 'Traceback' in verbose.stderr
  assert not no_run.exists()  # Reading commands create nothing.


def test_report_holds_the_evaluator_numbers_and_links_existing_images(two_runs, tmp_path):
  output_dir, (_, first), (_, second) = two_runs
  result = _imdb_bert('report', '--out', tmp_path / 'report', *_on_smoke_run(output_dir))
  assert result.returncode == 0, result.stderr[-3000:]
  page = (tmp_path / 'report' / 'index.html').read_text()
  images = re.findall(r'<img src="([^"]+)"', page)
  assert {'review_lengths.png', 'learning_curves_PretrainTrainer.png',
          'learning_curves_ClassifierTrainer.png', 'confusion_matrix.png',
          'roc_curve.png'} <= set(images)
  assert all((tmp_path / 'report' / image).stat().st_size > 1000 for image in images)
  for metric in ('binary_accuracy', 'auc', 'precision', 'recall'):
    assert f'{second.test_metrics[metric]:.4f}' in page, metric
  assert 'length_bucket = ' in page and 'rating = ' in page  # Metrics per slice.
  assert html.escape('BinaryAccuracy ≥ 0.7') in page and 'class="blessed"' in page
  assert html.escape(first.outputs['PretrainTrainer']['Model']) in page  # Lineage.
  assert SMOKE_PIPELINE in page


def test_compile_kfp_writes_the_spec(tmp_path):
  result = _imdb_bert('compile-kfp', '--output', tmp_path / 'pipeline.yaml', '--preset', 'smoke')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'imdb-bert-smoke' in (tmp_path / 'pipeline.yaml').read_text()
