"""Benchmark: runs the pipeline with a preset and writes bench/results/PRESET.{json,md} (or --name).

Measures, in one run on this machine: per-component wall time; MLM training speed (tokens/s and
achieved FLOP/s ÷ fp32 matmul FLOP/s measured here, beside bfloat16's; the dtype policy it
trained in); masked-token accuracy; the classifier's
test accuracy and AUC from the Evaluator, and each of its parts' accuracy on `eval` and `test`;
the same classifier without pretraining; a TF-IDF logistic-regression baseline on the same
splits; and the fill-mask probe. With several `--seeds`, the classifier is fine-tuned once per
seed, with and without pretraining, to measure how much its test accuracy moves from run to run.

Usage: python bench/run_benchmark.py [--preset default] [--data PATH] [--no-ablation]
                                     [--seeds SEED ...] [--name NAME]
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import sys
import time
from importlib import metadata as package_metadata

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from modules import classifier_trainer, features, inference, models, outputs
from pipeline import configs, corpus, summary
from pipeline.pipeline import compile_for_local, create_pipeline

RESULTS_DIR = pathlib.Path(__file__).parent / 'results'
PROBE = 'i have watched this [mask] and it was awesome'
PACKAGES = ('tfx', 'tensorflow', 'tensorflow-transform', 'tensorflow-model-analysis', 'keras',
            'keras-hub', 'apache-beam', 'scikit-learn')


def machine() -> dict:
  cpu_model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                    if line.startswith('model name')), platform.processor())
  return {'cores': os.cpu_count(), 'cpu': cpu_model, 'python': platform.python_version(),
          'versions': {name: package_metadata.version(name) for name in PACKAGES}}


def matmul_flops_per_second(dtype: tf.DType = tf.float32, size: int = 2048, repeats: int = 20) -> float:
  """Best matmul throughput of this machine in `dtype`, all cores."""
  a = tf.cast(tf.random.normal([size, size]), dtype)
  b = tf.cast(tf.random.normal([size, size]), dtype)
  matmul = tf.function(lambda x, y: tf.matmul(x, y))
  matmul(a, b).numpy()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).numpy()
    times.append(time.perf_counter() - start)
  return 2 * size**3 / min(times)


def encoder_flops(num_layers: int, length: int, width: int, intermediate: int) -> float:
  """Forward FLOPs of a BERT encoder on one sequence of `length` tokens.

  Counts the Q, K, V and output projections, the attention scores and weighted sum, and the
  feed-forward layers; embeddings, layer norms and softmaxes are not matmuls and left out.
  """
  per_layer = (2 * length * width * width * 4  # Q, K, V and output projections.
               + 2 * 2 * length * length * width  # Scores and weighted sum.
               + 2 * 2 * length * width * intermediate)  # Feed-forward.
  return num_layers * per_layer


def mlm_training_flops_per_sequence(preset: configs.Preset) -> float:
  """Forward + backward (3x forward) FLOPs of one masked-LM training sequence.

  Counts the encoder (`encoder_flops`) and the head at the masked positions only (its dense
  layer and the projection onto the vocabulary).
  """
  length, width = preset.sequence_length, preset.encoder.hidden_dim
  predictions = features.max_predictions(length)
  head = 2 * predictions * width * (width + preset.vocabulary_size)
  return 3 * (encoder_flops(preset.encoder.num_layers, length, width, preset.encoder.intermediate_dim)
              + head)


def run_pipeline(preset_name: str, corpus_path: str, output_dir: pathlib.Path,
                 pretrain_encoder: bool, seed: int) -> summary.RunSummary:
  """Runs the preset's pipeline, fine-tuning with `seed`.

  Every run shares one root, so the components upstream of the ClassifierTrainer are cached
  after the first.
  """
  name = f'bench-{preset_name}'
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata.db'))
  preset = configs.PRESETS[preset_name]
  preset = dataclasses.replace(preset, fine_tuning=dataclasses.replace(preset.fine_tuning, seed=seed))
  serving = output_dir / ('serving' if pretrain_encoder else 'serving-no-pretraining') / f'seed-{seed}'
  tfx.orchestration.LocalDagRunner().run_with_ir(compile_for_local(create_pipeline(
      pipeline_name=name, pipeline_root=str(output_dir / 'root'), corpus_path=corpus_path,
      serving_model_dir=str(serving), metadata_connection_config=metadata,
      pretrain_encoder=pretrain_encoder, **preset.pipeline_args())))
  return summary.summarize(metadata, name)


def training_stats(model_run_uri: str) -> dict:
  with open(os.path.join(model_run_uri, outputs.TRAINING_STATS_FILE)) as stats_file:
    return json.load(stats_file)


def blend(run: summary.RunSummary) -> dict:
  """The ClassifierTrainer's blend: its weights, and the eval and test accuracy of each part and
  of the blend (test is only reported, as the Evaluator's figures are)."""
  with open(os.path.join(run.outputs['ClassifierTrainer']['ModelRun'],
                         outputs.BLEND_FILE)) as blend_file:
    fitted = json.load(blend_file)
  return {**fitted, 'test_accuracy': test_accuracy_of_parts(run)}


def test_accuracy_of_parts(run: summary.RunSummary, chunk: int = 500) -> dict:
  """Accuracy on all of `test` of each part of the trained classifier and of their blend."""
  import keras
  import tensorflow_transform as tft
  from tfx.utils import path_utils

  model = keras.saving.load_model(os.path.join(
      path_utils.serving_model_dir(run.outputs['ClassifierTrainer']['Model']), outputs.CLASSIFIER_FILE))
  parts = models.part_logits(model)
  transform = tft.TFTransformOutput(run.outputs['Transform']['TransformGraph']).transform_features_layer()
  texts, labels = zip(*summary.reviews(run.outputs['ImdbExampleGen']['Examples'], 'test'), strict=True)
  logits = []
  for start in range(0, len(texts), chunk):
    transformed = transform({features.TEXT_KEY: tf.reshape(tf.constant(texts[start:start + chunk]), [-1, 1])})
    logits.append(keras.ops.convert_to_numpy(
        parts({key: transformed[key] for key in models.classifier_inputs(model)}, training=False)))
  logits, labels = np.concatenate(logits), np.array(labels)
  weights, bias = model.get_layer(models.BLEND_LAYER).get_weights()
  return classifier_trainer.part_accuracies(logits, labels, weights[:, 0], bias[0])


def _blend_row(label: str, fitted: dict) -> str:
  weights = ', '.join(f'{part} {weight:.2f}' for part, weight in fitted['weights'].items())

  def accuracies(split):
    return ' / '.join(f"{fitted[f'{split}_accuracy'].get(part, float('nan')):.4f}"
                      for part in (*classifier_trainer.PART_NAMES, 'blend'))
  return (f"| {label}: accuracy of encoder / n-grams / blend (weights {weights}) on eval; on test | "
          f"{accuracies('eval')}; {accuracies('test')} |")


def linear_baseline_model():
  """TF-IDF unigrams and bigrams and a logistic regression, untuned: an unfitted scikit-learn
  pipeline from review text to a probability."""
  from sklearn.feature_extraction.text import TfidfVectorizer
  from sklearn.linear_model import LogisticRegression
  from sklearn.pipeline import make_pipeline

  return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                       LogisticRegression(max_iter=1000))


def linear_baseline(examples_uri: str) -> dict:
  """`linear_baseline_model` fit on `train`, scored on `test`."""
  from sklearn.metrics import accuracy_score, roc_auc_score

  def read(split):
    texts, labels = zip(*summary.reviews(examples_uri, split), strict=True)
    return list(texts), np.array(labels)

  start = time.perf_counter()
  (train_texts, train_labels), (test_texts, test_labels) = read('train'), read('test')
  model = linear_baseline_model().fit(train_texts, train_labels)
  scores = model.predict_proba(test_texts)[:, 1]
  return {'binary_accuracy': accuracy_score(test_labels, scores >= 0.5),
          'auc': roc_auc_score(test_labels, scores), 'seconds': time.perf_counter() - start}


def write_results(name: str, result: dict, table: str) -> None:
  """Writes `bench/results/NAME.json` and `NAME.md`, and prints the table."""
  RESULTS_DIR.mkdir(exist_ok=True)
  (RESULTS_DIR / f'{name}.json').write_text(json.dumps(result, indent=2))
  (RESULTS_DIR / f'{name}.md').write_text(table)
  print(table)


def markdown(result: dict) -> str:
  mlm = result['mlm']
  lines = [f"# Benchmark: preset `{result['preset']}`, {result['date']}", '',
           f"Machine: {result['machine']['cores']} cores, {result['machine']['cpu']}", '',
           f"Encoder: {_encoder_line(result['settings'])}", '',
           '| component | state | wall s |', '| --- | --- | --- |']
  lines += [f"| {c['component_id']} | {c['state']} | {c['seconds']:.1f} |"
            for c in result['components']]
  lines += ['', '| measure | value |', '| --- | --- |',
            f"| pipeline wall time, ingest to push | {result['pipeline_seconds']:.0f} s |",
            f"| MLM tokens/s | {mlm['tokens_per_second']:.0f} |",
            mlm_speed_row(mlm, result),
            f"| masked-token accuracy (eval) | {mlm['masked_accuracy']:.4f} |",
            f"| classifier test accuracy / AUC | {result['classifier']['binary_accuracy']:.4f} / "
            f"{result['classifier']['auc']:.4f} |",
            _blend_row('classifier', result['blend'])]
  if result.get('no_pretraining'):
    lines += [f"| without pretraining: test accuracy / AUC | "
              f"{result['no_pretraining']['binary_accuracy']:.4f} / "
              f"{result['no_pretraining']['auc']:.4f} |",
              _blend_row('without pretraining', result['no_pretraining']['blend'])]
  lines += [f"| TF-IDF + logistic regression: test accuracy / AUC | "
            f"{result['linear_baseline']['binary_accuracy']:.4f} / "
            f"{result['linear_baseline']['auc']:.4f} ({result['linear_baseline']['seconds']:.0f} s) |",
            f"| fill-mask top-5 for \"{PROBE}\" | {', '.join(result['fill_mask'])} |"]
  if len(result['seeds']) > 1:
    lines += _seeds_table(result['seeds'])
  return '\n'.join(lines) + '\n'


def mlm_speed_row(speed: dict, peaks: dict) -> str:
  """The MLM's FLOP/s ratio against fp32 matmuls, naming the dtype policy it trained in and
  beside bfloat16's matmul peak.

  Args:
    speed: `dtype_policies`, `flops_ratio` and `achieved_gflops` of the MLM training.
    peaks: `matmul_gflops` (fp32) and `bfloat16_matmul_gflops` of this machine.
  """
  return (f"| MLM achieved / fp32 matmul FLOP/s, {', '.join(speed['dtype_policies'])} | "
          f"{speed['flops_ratio']:.3f} ({speed['achieved_gflops']:.1f} / {peaks['matmul_gflops']:.1f} "
          f"GFLOP/s; bfloat16 matmuls: {peaks['bfloat16_matmul_gflops']:.1f}) |")


def _encoder_line(settings: dict) -> str:
  encoder, pretraining = settings['encoder'], settings['pretraining']
  return (f"{encoder['num_layers']} layers, {encoder['hidden_dim']} wide, {encoder['num_heads']} "
          f"heads, feed-forward {encoder['intermediate_dim']}; {pretraining['steps']} MLM steps "
          f"of {pretraining['batch_size']}")


_SEED_COLUMNS = {'pretrained': 'test accuracy / AUC',
                 'no_pretraining': 'without pretraining: test accuracy / AUC'}


def _seeds_table(seeds: list) -> list:
  """Test accuracy / AUC per fine-tuning seed, and their mean ± standard deviation."""
  variants = [variant for variant in _SEED_COLUMNS if variant in seeds[0]]

  def row(label, cells):
    return f"| {label} | {' | '.join(cells)} |"

  def mean_and_sd(variant, metric):
    values = [run[variant][metric] for run in seeds]
    return f'{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}'
  lines = ['', row('fine-tuning seed', [_SEED_COLUMNS[variant] for variant in variants]),
           row('---', ['---'] * len(variants))]
  lines += [row(run['seed'], [f"{run[variant]['binary_accuracy']:.4f} / {run[variant]['auc']:.4f}"
                              for variant in variants]) for run in seeds]
  lines.append(row('mean ± sd', [f"{mean_and_sd(variant, 'binary_accuracy')} / "
                                 f"{mean_and_sd(variant, 'auc')}" for variant in variants]))
  return lines


def _headline(metrics: dict) -> dict:
  return {metric: metrics[metric] for metric in ('binary_accuracy', 'auc')}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default')
  parser.add_argument('--data', help=f'aclImdb .tar.gz or folder (default: ${corpus.CORPUS_ENV})')
  parser.add_argument('--output-dir', help='Pipeline outputs (default: bench/tmp/PRESET)')
  parser.add_argument('--no-ablation', action='store_true', help='Skip the no-pretraining runs')
  parser.add_argument('--seeds', type=int, nargs='+',
                      help="Fine-tuning seeds, one classifier each (default: the preset's)")
  parser.add_argument('--name', help="Of the results files, bench/results/NAME.* (default: the preset's)")
  args = parser.parse_args()
  corpus_path = corpus.resolve_corpus(args.data)
  output_dir = pathlib.Path(args.output_dir or pathlib.Path(__file__).parent / 'tmp' / args.preset)
  preset = configs.PRESETS[args.preset]
  seeds = args.seeds or [preset.fine_tuning.seed]

  matmul = matmul_flops_per_second()
  bfloat16_matmul = matmul_flops_per_second(tf.bfloat16)
  start = time.perf_counter()
  run = run_pipeline(args.preset, corpus_path, output_dir, pretrain_encoder=True, seed=seeds[0])
  pipeline_seconds = time.perf_counter() - start
  stats = training_stats(run.outputs['PretrainTrainer']['ModelRun'])
  flops_per_step = mlm_training_flops_per_sequence(preset) * preset.pretraining.batch_size
  achieved = flops_per_step / stats['seconds_per_step']
  result = {
      'preset': args.preset,
      'settings': dataclasses.asdict(preset),
      'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'machine': machine(),
      'matmul_gflops': matmul / 1e9,
      'bfloat16_matmul_gflops': bfloat16_matmul / 1e9,
      'components': [dataclasses.asdict(component) for component in run.components],
      'pipeline_seconds': pipeline_seconds,
      'example_counts': run.example_counts,
      'mlm': {
          'dtype_policies': stats['dtype_policies'],
          'seconds_per_step': stats['seconds_per_step'],
          'tokens_per_second': preset.pretraining.batch_size * preset.sequence_length
                               / stats['seconds_per_step'],
          'achieved_gflops': achieved / 1e9,
          'flops_ratio': achieved / matmul,
          'masked_accuracy': stats['epochs'][-1]['val_masked_accuracy'],
      },
      'classifier': run.test_metrics,
      'blend': blend(run),
      'blessed': run.blessed,
      'fill_mask': [token for token, _ in inference.fill_mask(
          PROBE, run.outputs['PretrainTrainer']['Model'], run.outputs['Transform']['TransformGraph'])],
      'linear_baseline': linear_baseline(run.outputs['ImdbExampleGen']['Examples']),
  }
  result['seeds'] = [{'seed': seeds[0], 'pretrained': _headline(run.test_metrics)}]
  if not args.no_ablation:
    ablation = run_pipeline(args.preset, corpus_path, output_dir, pretrain_encoder=False,
                            seed=seeds[0])
    result['no_pretraining'] = {**ablation.test_metrics, 'blend': blend(ablation)}
    result['seeds'][0]['no_pretraining'] = _headline(ablation.test_metrics)
  for seed in seeds[1:]:
    runs = {'seed': seed, 'pretrained': _headline(run_pipeline(
        args.preset, corpus_path, output_dir, pretrain_encoder=True, seed=seed).test_metrics)}
    if not args.no_ablation:
      runs['no_pretraining'] = _headline(run_pipeline(
          args.preset, corpus_path, output_dir, pretrain_encoder=False, seed=seed).test_metrics)
    result['seeds'].append(runs)
  write_results(args.name or args.preset, result, markdown(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())
