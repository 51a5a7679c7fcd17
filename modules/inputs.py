"""tf.data pipelines over Transform's output, shared by both Trainers."""

from typing import Callable, List, Sequence, Tuple

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import config, features

# Records shuffled at a time. Files may hold long runs of one label (ExampleGen writes each
# aclImdb folder's reviews together), so a window smaller than the split gives batches that
# lean one way for hundreds of steps and a model that leans with them (bench/README.md). This
# one holds all of aclImdb's train + unsup: each pass is a uniform shuffle.
_SHUFFLE_BUFFER = 100_000


def transformed_dataset(file_patterns: List[str], tft_output: tft.TFTransformOutput,
                        keys: Sequence[str], batch_size: int, shuffle: bool,
                        seed: int) -> tf.data.Dataset:
  """Endless batches of transformed features, each of exactly `batch_size` examples.

  Fixed batch shapes keep XLA from compiling again for a last, smaller batch. Records are
  parsed a batch at a time, on a thread of the input's own (see `_input_options`).

  Args:
    file_patterns: Globs of gzipped TFRecord files (TFX's `train_files`/`eval_files`).
    tft_output: The Transform output whose feature spec parses the records.
    keys: The transformed features to parse.
    batch_size: Examples per batch.
    shuffle: Whether to shuffle files and records (training) or keep the order (evaluation).
    seed: Shuffle seed.
  """
  spec = tft_output.transformed_feature_spec()
  spec = {key: spec[key] for key in keys}
  files = sorted(path for pattern in file_patterns for path in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'No transformed examples match {file_patterns}')
  dataset = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    dataset = dataset.shuffle(len(files), seed=seed)
  # Files read in parallel, records in a fixed order: the seed alone decides the shuffle.
  dataset = dataset.interleave(
      lambda path: tf.data.TFRecordDataset(path, compression_type='GZIP'),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if shuffle:
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed)
  return (dataset.repeat()
          .batch(batch_size, drop_remainder=True)
          .map(lambda records: tf.io.parse_example(records, spec),
               num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE)
          .with_options(_input_options()))


def _input_options() -> tf.data.Options:
  """Input on one thread of its own, without autotuning; split by batch between workers.

  Parsing a batch takes milliseconds; left to autotune, tf.data threads contend with the
  training step for the cores and slow it down on a small machine (bench/README.md).
  Several workers each take their share of every batch (Transform may write fewer files
  than there are workers, which splitting by file cannot serve).
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  options.threading.private_threadpool_size = 1
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return options


def train_and_eval_datasets(
    fn_args: FnArgs, schedule: config.TrainingConfig, tft_output: tft.TFTransformOutput,
    keys: Sequence[str], to_batch: Callable) -> Tuple[tf.data.Dataset, tf.data.Dataset]:
  """The Trainer's shuffled training batches and ordered eval batches, mapped by `to_batch`.

  Args:
    fn_args: The Trainer's arguments: the files of each.
    schedule: The Trainer's `batch_size`, and the `seed` of the shuffling.
    tft_output: The Transform output whose feature spec parses the records.
    keys: The transformed features to parse.
    to_batch: Maps a dict of parsed features to what the model's `fit` takes.
  """
  return tuple(
      transformed_dataset(files, tft_output, keys, schedule.batch_size, shuffle,
                          schedule.seed).map(to_batch)
      for files, shuffle in ((fn_args.train_files, True), (fn_args.eval_files, False)))


def sequence_length(tft_output: tft.TFTransformOutput, key: str) -> int:
  """The fixed length of a transformed sequence feature."""
  return int(tft_output.transformed_feature_spec()[key].shape[0])


def encoder_shape(tft_output: tft.TFTransformOutput) -> Tuple[int, int]:
  """(vocabulary size with the special tokens, sequence length) of the Transform output."""
  vocabulary_size = (tft_output.vocabulary_size_by_name(features.VOCABULARY_NAME)
                     + features.NUM_SPECIAL_TOKENS)
  return vocabulary_size, sequence_length(tft_output, features.TOKEN_IDS_KEY)
