"""The run report: one HTML page, with PNG plots beside it, built from ML Metadata and the artifacts.

Sections: the run (components, wall time, blessing), the data per split, the vocabulary, both
Trainers' learning curves (from their TensorBoard logs), fill-mask examples, the Evaluator's metrics
per slice with the thresholds, the confusion matrix and ROC curve, and the pushed model's lineage.
"""

import collections
import html
import json
import os
from typing import Dict, List, Sequence, Tuple

import matplotlib
import matplotlib.ticker

matplotlib.use('Agg')  # Files only, no display.
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position
import tensorflow_model_analysis as tfma  # pylint: disable=wrong-import-position
import tensorflow_transform as tft  # pylint: disable=wrong-import-position
from ml_metadata.proto import metadata_store_pb2  # pylint: disable=wrong-import-position
from tensorflow_model_analysis.writers import eval_config_writer  # pylint: disable=wrong-import-position

from components.evaluator import component as evaluator  # pylint: disable=wrong-import-position
from modules import features, inference  # pylint: disable=wrong-import-position
from pipeline import summary  # pylint: disable=wrong-import-position
from pipeline.pipeline import SERVED_MODEL_ID  # pylint: disable=wrong-import-position

REPORT_FILE = 'index.html'
FILL_MASK_SENTENCES = ('i have watched this [mask] and it was awesome',
                       'the acting was [mask] and the plot made no sense',
                       'one of the best [mask] i have seen this year')
TOP_TOKENS = 40
LABEL_NAMES = {1: 'positive', 0: 'negative', -1: 'unlabeled'}
_TRAINERS = ('PretrainTrainer', 'ClassifierTrainer')
_STYLE = '''
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 0.25em 0.8em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; } img { max-width: 100%; border: 1px solid #eee; }
.blessed { color: #1a7f37; font-weight: bold; } .not-blessed { color: #c62828; font-weight: bold; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } .figures img { width: 520px; }
code { background: #f4f4f4; padding: 0 0.3em; word-break: break-all; } .muted { color: #777; }
'''


def write_report(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
                 out_dir: str) -> str:
  """Writes `out_dir/index.html` and its plots for the latest run of `pipeline_name`.

  Returns:
    The path of the HTML page.
  """
  os.makedirs(out_dir, exist_ok=True)
  run = summary.summarize(connection_config, pipeline_name)
  sections = [_run_section(run), _data_section(run, out_dir), _vocabulary_section(run),
              _training_section(run, out_dir), _fill_mask_section(run),
              _evaluation_section(run, out_dir), _lineage_section(run)]
  page = os.path.join(out_dir, REPORT_FILE)
  with open(page, 'w') as page_file:
    page_file.write(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
                    f'<title>{html.escape(pipeline_name)}: run {html.escape(run.run_id)}</title>'
                    f'<style>{_STYLE}</style></head><body>\n'
                    f'<h1>{html.escape(pipeline_name)}</h1>\n'
                    f'<p class="muted">Run {html.escape(run.run_id)}</p>\n'
                    + '\n'.join(section for section in sections if section)
                    + '\n</body></html>\n')
  return page


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  head = ''.join(f'<th>{html.escape(str(cell))}</th>' for cell in header)
  body = ''.join('<tr>' + ''.join(f'<td>{html.escape(_cell(cell))}</td>' for cell in row) + '</tr>'
                 for row in rows)
  return f'<table><tr>{head}</tr>{body}</table>'


def _cell(value: object) -> str:
  if isinstance(value, float):
    return f'{value:.4f}'
  if isinstance(value, int):
    return f'{value:,}'
  return str(value)


def _figure(out_dir: str, name: str, figure: plt.Figure) -> str:
  """Saves `figure` as `out_dir/name.png`; returns its <img> tag."""
  figure.tight_layout()
  figure.savefig(os.path.join(out_dir, f'{name}.png'), dpi=100)
  plt.close(figure)
  return f'<img src="{name}.png" alt="{html.escape(name)}">'


def _blessing(blessed) -> str:
  if blessed is None:
    return '<span class="muted">not evaluated</span>'
  return ('<span class="blessed">blessed</span>' if blessed
          else '<span class="not-blessed">NOT blessed</span>')


def _run_section(run: summary.RunSummary) -> str:
  components = _table(('component', 'state', 'seconds'),
                      [(c.component_id, c.state, f'{c.seconds:.1f}') for c in run.components])
  pushed = (f'pushed to <code>{html.escape(run.pushed_to)}</code>' if run.pushed_to
            else 'nothing pushed')
  return (f'<h2>Run</h2><p>Candidate {_blessing(run.blessed)}; {pushed}. Test: '
          + ', '.join(f'{name} {value:.4f}' for name, value in run.test_metrics.items()
                      if name != 'example_count')
          + f'. Total component time {sum(c.seconds for c in run.components):,.0f} s.</p>'
          + components)


def _read_split(examples_uri: str, split: str, batch_size: int = 1024
                ) -> Tuple[np.ndarray, collections.Counter]:
  """Word counts and label counts of the reviews of one split.

  Parsed and counted a batch at a time in TensorFlow: the report reads every review of every
  split, and a Python loop over them grew its time six times as fast (bench/README.md).
  """
  files = tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*'))
  spec = {features.TEXT_KEY: tf.io.FixedLenFeature([], tf.string),
          features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
  batches = (tf.data.TFRecordDataset(files, compression_type='GZIP').batch(batch_size)
             .map(lambda records: tf.io.parse_example(records, spec)))
  lengths, labels = [np.zeros([0], np.int64)], collections.Counter()
  for batch in batches:
    lengths.append(tf.strings.split(batch[features.TEXT_KEY]).row_lengths().numpy())
    labels.update(LABEL_NAMES.get(label, 'other') for label in batch[features.LABEL_KEY].numpy().tolist())
  return np.concatenate(lengths), labels


def _data_section(run: summary.RunSummary, out_dir: str) -> str:
  examples_uri = run.outputs.get('ImdbExampleGen', {}).get('Examples')
  if not examples_uri:
    return ''
  splits = [split for split in ('train', 'eval', 'test', 'unsup') if run.example_counts.get(split)]
  read = {split: _read_split(examples_uri, split) for split in splits}
  figure, axes = plt.subplots(figsize=(6.5, 3.6))
  longest = max((lengths.max() for lengths, _ in read.values() if lengths.size), default=1)
  bins = np.linspace(0, min(longest, 1500), 50)
  for split, (lengths, _) in read.items():
    axes.hist(lengths, bins=bins, histtype='step', density=True, label=split, linewidth=1.5)
  axes.set(title='Review length', xlabel='words in the raw review',
           ylabel='share of reviews')
  axes.legend()
  lengths_image = _figure(out_dir, 'review_lengths', figure)
  label_rows = [(split, *(labels[name] for name in LABEL_NAMES.values()),
                 int(np.median(lengths)) if lengths.size else 0)
                for split, (lengths, labels) in read.items()]
  counts = ', '.join(f'{name} {count:,}' for name, count in run.example_counts.items())
  spans = '' if run.spans == [0] else f' Spans read: {", ".join(map(str, run.spans))}.'
  return (f'<h2>Data</h2><p>Reviews per split: {counts}.{spans}</p>'
          + _table(('split', *LABEL_NAMES.values(), 'median words'), label_rows)
          + f'<div class="figures">{lengths_image}</div>')


def _vocabulary_section(run: summary.RunSummary) -> str:
  transform_uri = run.outputs.get('Transform', {}).get('TransformGraph')
  if not transform_uri:
    return ''
  tokens = tft.TFTransformOutput(transform_uri).vocabulary_by_name(features.VOCABULARY_NAME)
  top = ', '.join(html.escape(token.decode()) for token in tokens[:TOP_TOKENS])
  return (f'<h2>Vocabulary</h2><p>{len(tokens):,} tokens learned from train and unsup, plus '
          f'{features.NUM_SPECIAL_TOKENS} special tokens. The {TOP_TOKENS} most frequent: {top}</p>')


def _scalars(event_dir: str) -> Dict[str, List[Tuple[int, float]]]:
  """Per-epoch scalars (tag `epoch_*`) of one TensorBoard log folder: tag → [(epoch, value)]."""
  curves = collections.defaultdict(list)
  for path in sorted(tf.io.gfile.glob(os.path.join(event_dir, 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag.startswith('epoch_'):
          curves[value.tag[len('epoch_'):]].append((event.step, float(tf.make_ndarray(value.tensor))))
  return curves


def _training_section(run: summary.RunSummary, out_dir: str) -> str:
  images, notes = [], []
  for trainer in _TRAINERS:
    model_run = run.outputs.get(trainer, {}).get('ModelRun')
    if not model_run:
      continue
    train, validation = (_scalars(os.path.join(model_run, part)) for part in ('train', 'validation'))
    metrics = [name for name in train if name != 'learning_rate']
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.2), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
      for label, curves in (('train', train), ('validation', validation)):
        if curves.get(metric):
          epochs, values = zip(*sorted(curves[metric]), strict=True)
          axis.plot(np.array(epochs) + 1, values, marker='o', label=label)
      axis.set(title=f'{trainer}: {metric}', xlabel='epoch')
      axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
      axis.legend()
    images.append(_figure(out_dir, f'learning_curves_{trainer}', figure))
    notes += [f'{trainer} final validation {metric} {curve[-1][1]:.4f}'
              for metric, curve in sorted(validation.items()) if curve]
  if not images:
    return ''
  return ('<h2>Training</h2><p>From the Trainers\' TensorBoard logs. '
          + '; '.join(html.escape(note) for note in notes) + '.</p>'
          + f'<div class="figures">{"".join(images)}</div>')


def _fill_mask_section(run: summary.RunSummary) -> str:
  pretrained = run.outputs.get('PretrainTrainer', {}).get('Model')
  if not pretrained:
    return ''
  rows = []
  for sentence in FILL_MASK_SENTENCES:
    tokens = inference.fill_mask(sentence, pretrained, run.outputs['Transform']['TransformGraph'])
    rows.append((sentence, ', '.join(f'{token} ({probability:.3f})' for token, probability in tokens)))
  return ('<h2>Fill-mask</h2><p>The pretrained encoder\'s top 5 tokens at [mask]:</p>'
          + _table(('sentence', 'top tokens (probability)'), rows))


def _slice_name(slice_key) -> str:
  """'Overall', or 'column = value' for each key of the slice."""
  names = []
  for key in slice_key.single_slice_keys:
    value = getattr(key, key.WhichOneof('kind'))
    names.append(f'{key.column} = {value.decode() if isinstance(value, bytes) else value}')
  return ', '.join(names) or 'Overall'


def _thresholds(config: tfma.EvalConfig) -> List[str]:
  """The gates of the eval config, in words."""
  gates = []
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      for threshold in [metric.threshold] + [t.threshold for t in metric.per_slice_thresholds]:
        value, change = threshold.value_threshold, threshold.change_threshold
        if value.HasField('lower_bound'):
          gates.append(f'{metric.class_name} ≥ {value.lower_bound.value:g}')
        if change.HasField('absolute'):
          gates.append(f'{metric.class_name} ≥ the served model\'s {change.absolute.value:+g}')
  return gates


def _slice_gate(evaluation: str) -> List[str]:
  """The slice gate in words, as the Evaluator applied it; none for an evaluation without one."""
  path = os.path.join(evaluation, evaluator.SLICE_GATE_FILE)
  if not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path) as gate_file:
    gate = json.load(gate_file)['gate']
  return [f'BinaryAccuracy on each {" and each ".join(gate["features"])} slice of at least '
          f'{gate["min_examples"]:,} reviews ≥ the served model\'s {-gate["max_accuracy_drop"]:+g}']


def _evaluation_section(run: summary.RunSummary, out_dir: str) -> str:
  evaluation = run.outputs.get('Evaluator', {}).get('ModelEvaluation')
  if not evaluation:
    return ''
  metric_names = ('example_count', 'binary_accuracy', 'auc', 'precision', 'recall')
  rows = [(_slice_name(slice_key), *(_metric_cell(name, values) for name in metric_names))
          for slice_key, values in summary.candidate_metrics_by_slice(evaluation)]
  rows.sort(key=lambda row: (row[0] != 'Overall', row[0]))  # Overall first, then by name.
  failures = gate_failures(evaluation, run.slice_regressions)
  gates = _thresholds(eval_config_writer.load_eval_run(evaluation)[0]) + _slice_gate(evaluation)
  decision = (f'<p>Gates: {html.escape("; ".join(gates) or "none")}. Decision: '
              f'{_blessing(run.blessed)}.'
              + ''.join(f'<br>Failed: {html.escape(reason)}' for reason in failures) + '</p>')
  return ('<h2>Evaluation (test split)</h2>' + decision
          + _table(('slice', *metric_names), rows) + _plots(evaluation, out_dir))


def gate_failures(evaluation: str, slice_regressions: Sequence[str]) -> List[str]:
  """Why the Evaluator refused a candidate: TFMA's failed thresholds, then the slice gate's
  regressions (the blessing's `slice_regressions`); empty when it passed."""
  validation = tfma.load_validation_result(evaluation)
  return ([_failure_text(failure) for per_slice in validation.metric_validations_per_slice
           for failure in per_slice.failures]
          + [f'slice {regression}' for regression in slice_regressions])


def _failure_text(failure) -> str:
  """A TFMA ValidationFailure in words (TFMA leaves its `message` empty)."""
  name, value = failure.metric_key.name, failure.metric_value.double_value.value
  threshold = failure.metric_threshold
  if failure.metric_key.is_diff:
    return (f'{name} changed by {value:+.4f} against the served model; the gate allows '
            f'{threshold.change_threshold.absolute.value:+g}')
  bounds = threshold.value_threshold
  return (f'{name} {value:.4f}, outside the gate\'s '
          + ' and '.join(f'{side} bound {getattr(bounds, side + "_bound").value:g}'
                         for side in ('lower', 'upper') if bounds.HasField(side + '_bound')))


# The mean labels of the one-class slices (a star rating's) on which a metric does not exist:
# AUC needs both classes, precision and recall positive reviews.
_UNDEFINED_AT_MEAN_LABEL = {'auc': (0.0, 1.0), 'precision': (0.0,), 'recall': (0.0,)}


def _metric_cell(name: str, values: Dict[str, float]) -> object:
  """A slice's metric for the table; '—' where the slice's one class leaves it undefined."""
  if name == 'example_count':
    return int(values[name])
  if values.get('mean_label') in _UNDEFINED_AT_MEAN_LABEL.get(name, ()):
    return '—'
  return values.get(name, float('nan'))


def _plots(evaluation: str, out_dir: str) -> str:
  """Confusion matrix at 0.5 and ROC curve of the candidate, overall."""
  matrices = []
  for slice_plots in tfma.load_plots(evaluation):
    if slice_plots.slice_key.single_slice_keys:
      continue
    for entry in slice_plots.plot_keys_and_values:
      if entry.key.model_name in ('', 'candidate'):
        matrices = list(entry.value.confusion_matrix_at_thresholds.matrices)
  if not matrices:
    return ''
  at_half = min(matrices, key=lambda matrix: abs(matrix.threshold - 0.5))
  figure, axes = plt.subplots(figsize=(4, 3.6))
  counts = np.array([[at_half.true_negatives, at_half.false_positives],
                     [at_half.false_negatives, at_half.true_positives]])
  axes.imshow(counts, cmap='Blues')
  for (row, column), count in np.ndenumerate(counts):
    axes.text(column, row, f'{int(count):,}', ha='center', va='center',
              color='white' if count > counts.max() / 2 else 'black', fontsize=13)
  axes.set(xticks=[0, 1], yticks=[0, 1], xticklabels=['negative', 'positive'],
           yticklabels=['negative', 'positive'], xlabel='predicted', ylabel='true',
           title=f'Confusion matrix at {at_half.threshold:.2f}')
  confusion = _figure(out_dir, 'confusion_matrix', figure)
  false_positive_rate = [m.false_positives / max(m.false_positives + m.true_negatives, 1)
                         for m in matrices]
  true_positive_rate = [m.true_positives / max(m.true_positives + m.false_negatives, 1)
                        for m in matrices]
  figure, axes = plt.subplots(figsize=(4, 3.6))
  axes.plot(false_positive_rate, true_positive_rate, label='candidate')
  axes.plot([0, 1], [0, 1], linestyle=':', color='grey', label='chance')
  axes.set(xlabel='false positive rate', ylabel='true positive rate', title='ROC curve')
  axes.legend(loc='lower right')
  roc = _figure(out_dir, 'roc_curve', figure)
  return f'<div class="figures">{confusion}{roc}</div>'


def _lineage_section(run: summary.RunSummary) -> str:
  """Where the pushed (or last candidate) model came from, artifact by artifact."""
  classifier = run.outputs.get('ClassifierTrainer', {}).get('Model')
  if not classifier:
    return ''
  served = run.outputs.get(SERVED_MODEL_ID, {}).get('Model')
  warm_started = run.baseline and served in run.inputs.get('ClassifierTrainer', [])
  rows = [('pushed model', run.pushed_to or 'nothing pushed'),
          ('classifier (ClassifierTrainer)', classifier),
          ('compared against', run.baseline or 'nothing (no model served yet)'),
          ('warm-started from', run.baseline if warm_started else 'no (fine-tuned from the encoder)'),
          ('pretrained encoder (PretrainTrainer)',
           run.outputs.get('PretrainTrainer', {}).get('Model', 'none: random encoder')),
          ('Transform graph', run.outputs.get('Transform', {}).get('TransformGraph', '')),
          ('examples (ImdbExampleGen)', run.outputs.get('ImdbExampleGen', {}).get('Examples', '')),
          ('spans', 'one corpus' if run.spans == [0] else ', '.join(map(str, run.spans))),
          ('pipeline run', run.run_id)]
  return '<h2>Lineage</h2>' + _table(('what', 'artifact'), rows)
