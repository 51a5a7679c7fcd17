"""Benchmark: what serving a pushed classifier costs, each signature measured in a fresh process.

For `serving_default` (serialized tf.Examples in) and `predict_text` (review strings in), and
for a TF-IDF + logistic-regression baseline fitted on aclImdb `train`, for scale: the time to
load the model, the first call (one review), the latency of one review at a time (p50, p90,
p99 over real `test` reviews), and the throughput in reviews/s at batches of 32 and 256; the
classifier's matmul FLOPs per review and what share of this machine's fp32 matmul peak the
throughput reaches. Writes bench/results/serving.{json,md} (or --name).

Each measurement runs in a process of its own, as a model server that just started would: the
load, the first call and the steady state are each seen once, with nothing warm from before.

Usage: python bench/serving.py [--model VERSION_DIR] [--data PATH] [--name NAME]
"""

import argparse
import datetime
import json
import os
import pathlib
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components.imdb_example_gen import corpus as aclimdb
from modules import serving
from pipeline import configs, corpus, summary
from run_benchmark import (encoder_flops, linear_baseline_model, machine,  # This folder's.
                           matmul_flops_per_second, write_results)

TFIDF = 'tfidf'
SIGNATURES = ('serving_default', 'predict_text')
LATENCY_CALLS = 300  # Single-review calls behind the percentiles.
BATCH_SIZES = (32, 256)
REVIEWS_PER_BATCH_SIZE = 2_048  # Reviews scored at each batch size (after one untimed batch).
DEFAULT_MODEL_ROOT = pathlib.Path(__file__).parent.parent / 'tfx_root' / 'serving_model'


def corpus_reviews(corpus_path: str, set_name: str) -> Iterator[Tuple[str, int]]:
  """(text, label) of the reviews of an aclImdb set, from the tarball or the extracted folder."""
  if aclimdb.is_tarball(corpus_path):
    files = aclimdb.read_files(corpus_path, set_name)
  else:
    files = (file for folder in aclimdb.SET_FOLDERS[set_name]
             for path in sorted(pathlib.Path(corpus_path, folder).glob('*.txt'))
             for file in aclimdb.read_files(str(path), set_name))
  for relative_path, content, _ in files:
    yield content.decode('utf-8', errors='replace'), aclimdb.FOLDER_LABELS[relative_path.split('/')[-2]]


def test_reviews(corpus_path: str, count: int) -> List[str]:
  """`count` aclImdb `test` reviews, positive and negative in turn (the corpus lists a folder's
  reviews together)."""
  by_label = {0: [], 1: []}
  for text, label in corpus_reviews(corpus_path, 'test'):
    if len(by_label[label]) < (count + 1) // 2:
      by_label[label].append(text)
  return [text for pair in zip(by_label[1], by_label[0], strict=True) for text in pair][:count]


def _load(kind: str, model_path: str) -> Callable[[List[str]], Callable[[], object]]:
  """Loads a signature of a SavedModel, or the pickled baseline, as `prepare`: `prepare(texts)`
  builds the request (what a client does) and returns `call`, which scores it."""
  if kind == TFIDF:
    with open(model_path, 'rb') as model_file:
      model = pickle.load(model_file)
    return lambda texts: (lambda: model.predict_proba(texts))
  signature = tf.saved_model.load(model_path).signatures[kind]

  def prepare(texts):
    inputs = ({serving.EXAMPLES_INPUT: tf.constant([serving.example(text) for text in texts])}
              if kind == serving.SERVING_DEFAULT else {serving.TEXT_INPUT: tf.constant(texts)})
    return lambda: {key: value.numpy() for key, value in signature(**inputs).items()}
  return prepare


def _seconds(call: Callable[[], object]) -> float:
  start = time.perf_counter()
  call()
  return time.perf_counter() - start


def measure(kind: str, model_path: str, reviews: Sequence[str]) -> Dict[str, object]:
  """Load, first call, single-review latencies and batch throughput of one model, in this process."""
  import sklearn.feature_extraction.text  # noqa: F401 (imported before the clock, as TF is)
  import sklearn.linear_model  # noqa: F401

  libraries_mb = _resident_mb()
  start = time.perf_counter()
  prepare = _load(kind, model_path)
  result = {'load_seconds': time.perf_counter() - start,
            'first_call_seconds': _seconds(prepare(reviews[:1]))}
  latencies = [_seconds(prepare([review])) * 1000 for review in reviews[1:1 + LATENCY_CALLS]]
  result['latency_ms'] = {f'p{q}': float(np.percentile(latencies, q)) for q in (50, 90, 99)}
  result['reviews_per_second'] = {}
  for batch_size in BATCH_SIZES:
    batches = [prepare(reviews[start:start + batch_size])
               for start in range(0, REVIEWS_PER_BATCH_SIZE, batch_size)]
    batches[-1]()  # Untimed: the first batch of a new size.
    result['reviews_per_second'][batch_size] = (
        REVIEWS_PER_BATCH_SIZE / sum(_seconds(batch) for batch in batches))
  result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  result['rss_before_load_mb'] = libraries_mb
  return result


def _resident_mb() -> float:
  """This process's resident memory now (the libraries it imported), in MiB."""
  with open('/proc/self/statm') as statm:
    return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def measure_in_fresh_process(kind: str, model_path: str, reviews_file: str) -> Dict[str, object]:
  """`measure` run by a new Python process of this script; its JSON result."""
  completed = subprocess.run(
      [sys.executable, __file__, '--measure', kind, '--model', model_path, '--reviews', reviews_file],
      check=True, stdout=subprocess.PIPE, text=True)
  return json.loads(completed.stdout.strip().splitlines()[-1])


def classifier_flops_per_review(model_path: str) -> Dict[str, int]:
  """Matmul FLOPs of the served classifier per review, from the Keras model saved beside it."""
  import keras
  import keras_hub

  from modules import models, outputs  # noqa: F401 (registers the custom layers)

  classifier = keras.saving.load_model(os.path.join(model_path, outputs.CLASSIFIER_FILE))
  encoder = next(layer for layer in classifier.layers
                 if isinstance(layer, keras_hub.models.BertBackbone))
  width = encoder.hidden_dim
  # The pooler and the sentiment logit; the n-gram part is a gather and a weighted sum.
  head = 2 * width * width + 2 * width
  return {'sequence_length': encoder.max_sequence_length, 'num_layers': encoder.num_layers,
          'hidden_dim': width, 'intermediate_dim': encoder.intermediate_dim,
          'flops': int(encoder_flops(encoder.num_layers, encoder.max_sequence_length, width,
                                     encoder.intermediate_dim) + head)}


def fit_baseline(corpus_path: str, model_file: str) -> Dict[str, float]:
  """Fits the TF-IDF baseline on aclImdb `train` and pickles it to `model_file`."""
  texts, labels = zip(*corpus_reviews(corpus_path, 'train'), strict=True)
  start = time.perf_counter()
  model = linear_baseline_model().fit(list(texts), np.array(labels))
  fit_seconds = time.perf_counter() - start
  with open(model_file, 'wb') as output:
    pickle.dump(model, output)
  return {'fit_seconds': fit_seconds, 'size_mb': os.path.getsize(model_file) / 2**20}


def newest_model(preset: str) -> str:
  version = summary.newest_pushed_model(str(DEFAULT_MODEL_ROOT / configs.pipeline_name(preset)))
  if not version:
    raise SystemExit(f'error: nothing pushed under {DEFAULT_MODEL_ROOT}: run `make run` or pass --model')
  return version


def markdown(result: dict) -> str:
  flops = result['flops_per_review']
  lines = [
      f"# Serving cost: {result['model']}",
      '',
      f"{result['machine']['cores']} cores, {result['machine']['cpu']}; fp32 matmul peak "
      f"{result['matmul_gflops']:.0f} GFLOP/s; {result['date']}. Reviews: the first "
      f"{result['reviews']:,} of aclImdb `test`. Encoder {flops['num_layers']} layers x "
      f"{flops['hidden_dim']} wide (feed-forward {flops['intermediate_dim']}), "
      f"{flops['sequence_length']} tokens: {flops['flops'] / 1e6:.0f} MFLOP of matmuls per review.",
      'Each model is measured in a process of its own, which has imported TensorFlow before loading it '
      '(the memory before loading).',
      '',
      '| model | load s | first call s | p50 / p90 / p99 ms (1 review) | reviews/s at 32 | at 256 '
      '| share of matmul peak at 256 | peak RSS MB (before loading) |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ]
  for kind, measured in result['measured'].items():
    latency = measured['latency_ms']
    throughput = measured['reviews_per_second']
    share = measured.get('matmul_peak_share')
    lines.append(
        f"| {kind} | {measured['load_seconds']:.2f} | {measured['first_call_seconds']:.3f} | "
        f"{latency['p50']:.1f} / {latency['p90']:.1f} / {latency['p99']:.1f} | "
        f"{throughput['32']:,.0f} | {throughput['256']:,.0f} | "
        f"{'-' if share is None else f'{share:.3f}'} | "
        f"{measured['peak_rss_mb']:,.0f} ({measured['rss_before_load_mb']:,.0f}) |")
  baseline = result['tfidf_fit']
  lines += ['', f"TF-IDF baseline: fitted on aclImdb `train` in {baseline['fit_seconds']:.0f} s, "
            f"{baseline['size_mb']:.0f} MB pickled.", '']
  return '\n'.join(lines)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model', help='A pushed version folder (default: the newest `make run` pushed)')
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default',
                      help="Whose newest pushed model to measure when --model is not given")
  parser.add_argument('--data', help=f'aclImdb .tar.gz or folder (default: ${corpus.CORPUS_ENV})')
  parser.add_argument('--name', default='serving', help='Of the results files, bench/results/NAME.*')
  parser.add_argument('--measure', choices=(*SIGNATURES, TFIDF), help=argparse.SUPPRESS)
  parser.add_argument('--reviews', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.measure:  # One measurement, in the fresh process the parent started.
    with open(args.reviews) as reviews_file:
      print(json.dumps(measure(args.measure, args.model, json.load(reviews_file))))
    return 0

  model_path = os.path.abspath(args.model or newest_model(args.preset))
  corpus_path = corpus.resolve_corpus(args.data)
  reviews = test_reviews(corpus_path, 1 + LATENCY_CALLS + REVIEWS_PER_BATCH_SIZE)
  with tempfile.TemporaryDirectory() as scratch:
    reviews_file, baseline_file = os.path.join(scratch, 'reviews.json'), os.path.join(scratch, 'tfidf.pkl')
    pathlib.Path(reviews_file).write_text(json.dumps(reviews))
    tfidf_fit = fit_baseline(corpus_path, baseline_file)
    measured = {kind: measure_in_fresh_process(kind, model_path, reviews_file) for kind in SIGNATURES}
    measured[TFIDF] = measure_in_fresh_process(TFIDF, baseline_file, reviews_file)
  flops = classifier_flops_per_review(model_path)
  matmul = matmul_flops_per_second()
  for kind in SIGNATURES:
    measured[kind]['matmul_peak_share'] = (
        flops['flops'] * measured[kind]['reviews_per_second']['256'] / matmul)
  result = {'model': model_path, 'date': datetime.datetime.now().isoformat(timespec='seconds'),
            'machine': machine(), 'matmul_gflops': matmul / 1e9, 'reviews': len(reviews),
            'flops_per_review': flops, 'tfidf_fit': tfidf_fit, 'measured': measured}
  write_results(args.name, result, markdown(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())
