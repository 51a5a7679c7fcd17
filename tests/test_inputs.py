"""The Trainers' tf.data input over Transform's output."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from modules import features, inputs


def _write_labels(path: str, labels) -> None:
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for label in labels:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))})
      ).SerializeToString())


def test_training_batches_mix_labels_that_the_files_hold_in_long_runs(transformed, tmp_path):
  # As ExampleGen writes aclImdb: each file holds its negative reviews, then its positive ones.
  run = 12_000  # Longer than the old 10,000-record shuffle window.
  for name in ('a', 'b'):
    _write_labels(str(tmp_path / f'{name}.gz'), [0] * run + [1] * run)
  _, transform_dir = transformed
  batches = inputs.transformed_dataset(
      [str(tmp_path / '*.gz')], tft.TFTransformOutput(transform_dir), [features.LABEL_KEY],
      batch_size=64, shuffle=True, seed=0)
  positive_shares = [float(np.mean(batch[features.LABEL_KEY]))
                     for batch in batches.take(4 * run // 64).as_numpy_iterator()]
  assert 0.2 < min(positive_shares[:20]) and max(positive_shares[:20]) < 0.8
  assert np.mean(positive_shares) == pytest.approx(0.5, abs=0.02)


def _training_labels(pattern: str, transform_dir: str, seed: int, batches: int = 8) -> np.ndarray:
  dataset = inputs.transformed_dataset(
      [pattern], tft.TFTransformOutput(transform_dir), [features.LABEL_KEY], batch_size=16,
      shuffle=True, seed=seed)
  return np.stack([batch[features.LABEL_KEY] for batch in dataset.take(batches).as_numpy_iterator()])


def test_the_seed_decides_the_order_of_training_records(transformed, tmp_path):
  for name in ('a', 'b', 'c'):
    _write_labels(str(tmp_path / f'{name}.gz'), [int(i % 3 == 0) for i in range(500)])
  _, transform_dir = transformed
  pattern = str(tmp_path / '*.gz')
  first = _training_labels(pattern, transform_dir, seed=0)
  np.testing.assert_array_equal(first, _training_labels(pattern, transform_dir, seed=0))
  assert not np.array_equal(first, _training_labels(pattern, transform_dir, seed=1))
