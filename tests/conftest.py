"""Shared fixtures: a small aclImdb-shaped corpus generated on the fly."""

import dataclasses
import functools
import glob
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time
from typing import Any, List, Sequence, Tuple

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from tfx import v1 as tfx

from modules import config, features, preprocessing
from pipeline import configs, summary

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_PIPELINE = 'imdb-bert-smoke'
REVIEWS_PER_MOVIE = 2
# The generated corpus's movies: each aclImdb set reviews movies of its own.
FIRST_MOVIE = {'train': 1_000_000, 'test': 2_000_000, 'unsup': 3_000_000}

# Raw features shaped as ExampleGen writes them and the pipeline's schema says: [1] each.
_RAW_METADATA = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
    features.TEXT_KEY: tf.io.FixedLenFeature([1], tf.string),
    features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
}))

_POSITIVE_WORDS = 'great wonderful superb brilliant loved moving masterpiece delightful'.split()
_NEGATIVE_WORDS = 'awful boring terrible waste dull hated painful worst'.split()
_COMMON_WORDS = 'the movie film this was and a of it plot actors story i watched scene'.split()


def make_review(rng: random.Random, positive: bool) -> str:
  """A review whose sentiment words follow its label, with HTML breaks and punctuation."""
  sentiment = _POSITIVE_WORDS if positive else _NEGATIVE_WORDS
  words = [rng.choice(_COMMON_WORDS + sentiment) for _ in range(rng.randint(15, 60))]
  return ' '.join(words[:10]).capitalize() + '!<br /><br />' + ' '.join(words[10:]) + '.'


def write_corpus(root: pathlib.Path, reviews_per_folder: int, seed: int = 0) -> pathlib.Path:
  """Writes `root/aclImdb/{train,test}/{pos,neg}` and `train/unsup` like the public tarball.

  As there, each folder has its `urls_FOLDER.txt` beside it, and a movie has several reviews
  (REVIEWS_PER_MOVIE, in both `pos` and `neg`); `test`'s movies are not `train`'s.
  """
  rng = random.Random(seed)
  corpus = root / 'aclImdb'
  for split in ('train', 'test'):
    for folder, positive in (('pos', True), ('neg', False)):
      directory = corpus / split / folder
      directory.mkdir(parents=True)
      for review_id in range(reviews_per_folder):
        rating = rng.randint(7, 10) if positive else rng.randint(1, 4)
        (directory / f'{review_id}_{rating}.txt').write_text(make_review(rng, positive))
      _write_urls(directory, split, reviews_per_folder)
  unsup = corpus / 'train' / 'unsup'
  unsup.mkdir()
  for review_id in range(reviews_per_folder):
    (unsup / f'{review_id}_0.txt').write_text(make_review(rng, rng.random() < 0.5))
  _write_urls(unsup, 'unsup', reviews_per_folder)
  return corpus


def movie_of(set_name: str, review_id: int) -> str:
  """The movie write_corpus gives review `review_id` of an aclImdb set (`unsup` counts as one)."""
  return f'tt{FIRST_MOVIE[set_name] + review_id // REVIEWS_PER_MOVIE:07d}'


def _write_urls(directory: pathlib.Path, set_name: str, reviews: int) -> None:
  """`urls_FOLDER.txt` beside `directory`: line i is the IMDB page of review i's movie."""
  (directory.parent / f'urls_{directory.name}.txt').write_text(''.join(
      f'http://www.imdb.com/title/{movie_of(set_name, review_id)}/usercomments\n'
      for review_id in range(reviews)))


def write_drop(drops, span, tmp_path, invert_training_labels=False, few_negative_tests=False):
  """Writes drop `DROPS/span-N/` in the aclImdb layout (120 reviews per folder); optionally with
  every training label flipped, or with all but 5 negative test reviews left out."""
  corpus = write_corpus(tmp_path / f'generated-{span}', reviews_per_folder=120, seed=span)
  if few_negative_tests:
    for review in sorted((corpus / 'test' / 'neg').iterdir())[5:]:
      review.unlink()
  if invert_training_labels:
    train = corpus / 'train'
    (train / 'pos').rename(train / 'was-pos')
    (train / 'neg').rename(train / 'pos')
    (train / 'was-pos').rename(train / 'neg')
    for review in list((train / 'pos').iterdir()) + list((train / 'neg').iterdir()):
      review_id, _ = review.stem.split('_')
      review.rename(review.with_name(f'{review_id}_{8 if review.parent.name == "pos" else 2}.txt'))
  shutil.move(str(corpus), str(drops / f'span-{span}'))


@pytest.fixture(scope='session')
def small_corpus(tmp_path_factory) -> pathlib.Path:
  """An aclImdb folder with 40 reviews per labeled folder and 40 unlabeled ones."""
  return write_corpus(tmp_path_factory.mktemp('corpus'), reviews_per_folder=40)


def transform_reviews(reviews: List[str], labels: List[int], workdir: pathlib.Path,
                      sequence_length: int, vocabulary_size: int, ngram_buckets: int):
  """Runs the real preprocessing_fn (analyze and transform) on Beam.

  Returns:
    The transformed rows, and the folder of the transform graph (a TFTransformOutput).
  """
  raw = [{features.TEXT_KEY: [text.encode()], features.LABEL_KEY: [label]}
         for text, label in zip(reviews, labels, strict=True)]
  config = {'sequence_length': sequence_length, 'vocabulary_size': vocabulary_size,
            'ngram_buckets': ngram_buckets}
  transform_dir = str(workdir / 'transform')
  with tft_beam.Context(temp_dir=str(workdir / 'tft_tmp'), force_tf_compat_v1=False):
    (rows, _), transform_fn = (raw, _RAW_METADATA) | tft_beam.AnalyzeAndTransformDataset(
        functools.partial(preprocessing.preprocessing_fn, custom_config=config),
        output_record_batches=False)
    _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
  return rows, transform_dir


def write_transformed(rows: list, transform_dir: str, path: str) -> None:
  """Writes transformed rows as gzipped tf.Examples, as Transform's output files are."""
  coder = tft.coders.ExampleProtoCoder(
      tft.TFTransformOutput(transform_dir).transformed_metadata.schema)
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for row in rows:
      writer.write(coder.encode(row))


@pytest.fixture(scope='session')
def transformed(tmp_path_factory) -> Tuple[pathlib.Path, str]:
  """(folder with train.gz and eval.gz, Transform output) of 200 generated reviews, smoke-sized."""
  workdir = tmp_path_factory.mktemp('transformed')
  smoke = configs.PRESETS['smoke']
  rng = random.Random(11)
  labels = [i % 2 for i in range(200)]
  rows, transform_dir = transform_reviews(
      [make_review(rng, positive=label == 1) for label in labels], labels, workdir,
      smoke.sequence_length, smoke.vocabulary_size, smoke.ngram_buckets)
  write_transformed(rows[:160], transform_dir, str(workdir / 'train.gz'))
  write_transformed(rows[160:], transform_dir, str(workdir / 'eval.gz'))
  return workdir, transform_dir


def trainer_fn_args(workdir: pathlib.Path, transform_dir: str, name: str, epochs: int,
                    steps_per_epoch: int, **schedule: Any) -> dict:
  """The FnArgs fields TFX gives a Trainer on the `transformed` data, as a dict.

  The smoke preset's pretraining schedule, with `epochs` and the other `schedule` fields
  replaced. Outputs go to folders `model/NAME` and `model_run/NAME` of `workdir`.
  """
  smoke = configs.PRESETS['smoke']
  return {
      'train_files': [str(workdir / 'train.gz')], 'eval_files': [str(workdir / 'eval.gz')],
      'train_steps': epochs * steps_per_epoch, 'eval_steps': 1, 'transform_output': transform_dir,
      'serving_model_dir': str(workdir / 'model' / name),
      'model_run_dir': str(workdir / 'model_run' / name),
      'custom_config': config.TrainerConfig(
          encoder=smoke.encoder,
          training=dataclasses.replace(smoke.pretraining, epochs=epochs, **schedule),
          ngram_buckets=smoke.ngram_buckets).to_custom_config(),
  }


def wait_for_backup_epoch(progress_pattern: str, epoch: int, process: subprocess.Popen) -> str:
  """Waits until a BackupAndRestore progress file matching the pattern reaches `epoch`."""
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    for progress in glob.glob(progress_pattern):
      try:
        if json.load(open(progress)).get('epoch', 0) >= epoch:
          return progress
      except ValueError:  # Caught while being written.
        pass
    time.sleep(0.05)
  raise AssertionError(f'no backup reached epoch {epoch} while the process ran')


def smoke_run_command(corpus: pathlib.Path, output_dir: pathlib.Path, *extra_args: str,
                      runner: Sequence[str] = ('local_runner.py',)) -> List[str]:
  """The command line of a `smoke` pipeline run, as a user types it."""
  return [sys.executable, *runner, '--preset', 'smoke', '--data', str(corpus),
          '--output-dir', str(output_dir), *extra_args]


def run_smoke_pipeline(corpus: pathlib.Path, output_dir: pathlib.Path, *extra_args: str,
                       **command_args) -> Tuple[subprocess.CompletedProcess, summary.RunSummary]:
  """Runs the pipeline in a new process; returns its result and its run read back from ML Metadata."""
  result = subprocess.run(smoke_run_command(corpus, output_dir, *extra_args, **command_args),
                          cwd=REPO_ROOT, capture_output=True, text=True)
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata' / SMOKE_PIPELINE / 'metadata.db'))
  return result, summary.summarize(metadata, SMOKE_PIPELINE)


@pytest.fixture(scope='session')
def two_runs(tmp_path_factory):
  """Two smoke runs of local_runner.py on the same generated corpus: the end-to-end test's runs.

  Returns:
    The output directory, and (stdout, RunSummary) of each run.
  """
  root = tmp_path_factory.mktemp('e2e')
  corpus_path = write_corpus(root, reviews_per_folder=120)  # The smoke preset reads 100.
  output_dir = root / 'out'
  runs = []
  for _ in range(2):
    result, run = run_smoke_pipeline(corpus_path, output_dir)
    assert result.returncode == 0, result.stderr[-5000:]
    runs.append((result.stdout, run))
  return (output_dir, *runs)
