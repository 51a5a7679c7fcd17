"""Transform's preprocessing_fn: text standardization, vocabulary, token ids, BERT masking, n-grams.

Masking is a pure function of the review text: every random draw comes from a hash of
(text, position), so a rerun of Transform yields the same masked data, and serving
(which reads only the clean `token_ids`) gives identical outputs for identical text.
"""

from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft

from modules import config, features

# A hash in [0, 2**62) gives three independent draws per position from its bit fields.
_HASH_BUCKETS = 2**62
_SELECTION_BITS = 2**20
_ACTION_BITS = 2**10


def standardize(text: tf.Tensor) -> tf.Tensor:
  """Lower-cases, turns `<br />` line breaks into spaces and punctuation into spaces."""
  text = tf.strings.lower(text)
  text = tf.strings.regex_replace(text, r'<br\s*/?>', ' ')
  return tf.strings.regex_replace(text, r'[[:punct:]]', ' ')


def head_and_tail(words: tf.RaggedTensor, room: int) -> tf.RaggedTensor:
  """Keeps rows that fit `room` whole; of longer ones, the first and last words that fill it."""
  head = int(room * features.HEAD_SHARE)
  positions = tf.ragged.range(words.row_lengths())
  from_end = tf.expand_dims(words.row_lengths(), 1) - positions
  return tf.ragged.boolean_mask(words, (positions < head) | (from_end <= room - head))


def _token_ids(tokens: tf.RaggedTensor, words: tf.RaggedTensor, sequence_length: int,
               vocabulary_size: int) -> tf.Tensor:
  """Maps `words` to ids after the special tokens; adds [CLS]/[SEP]; pads.

  The vocabulary is learned from all `tokens`; `words` are those of them that fit the sequence.
  """
  vocabulary = tft.vocabulary(
      tokens, top_k=vocabulary_size - features.NUM_SPECIAL_TOKENS,
      vocab_filename=features.VOCABULARY_NAME)
  word_ids = tft.apply_vocabulary(
      words, vocabulary, default_value=features.UNK_ID - features.NUM_SPECIAL_TOKENS)
  word_ids += features.NUM_SPECIAL_TOKENS
  batch_size = tf.shape(word_ids.row_lengths())[0]
  cls = tf.fill([batch_size, 1], tf.constant(features.CLS_ID, tf.int64))
  sep = tf.fill([batch_size, 1], tf.constant(features.SEP_ID, tf.int64))
  ids = tf.concat([cls, word_ids, sep], axis=1)
  return ids.to_tensor(default_value=features.PAD_ID, shape=[None, sequence_length])


def ngram_ids(tokens: tf.RaggedTensor, num_buckets: int) -> tf.RaggedTensor:
  """Hash buckets in [1, num_buckets) of the review's distinct unigrams and bigrams.

  All of the review's words count, not only those that fit the encoder's sequence; each
  n-gram once, in order of first appearance, at most MAX_NGRAMS_PER_REVIEW of them. Buckets
  hash the strings, not vocabulary ids, so they keep their meaning across runs whose
  vocabularies differ: a warm-started classifier keeps its n-gram weights.
  """
  ngrams = tf.strings.ngrams(tokens, ngram_width=(1, 2), separator=' ')
  buckets = tf.ragged.map_flat_values(tf.strings.to_hash_bucket_fast, ngrams, num_buckets - 1) + 1
  # Row-major keys keep rows apart and in order; tf.unique keeps first appearances.
  keys = tf.unique(buckets.value_rowids() * num_buckets + buckets.flat_values).y
  distinct = tf.RaggedTensor.from_value_rowids(keys % num_buckets, keys // num_buckets,
                                               nrows=buckets.nrows())
  return distinct[:, :features.MAX_NGRAMS_PER_REVIEW]


def ngram_log_ratios(ids: tf.RaggedTensor, label: tf.Tensor, num_buckets: int) -> tf.RaggedTensor:
  """The naive-Bayes log-count ratio of each of `ids`, learned from the labeled analyzed reviews.

  log(p_b / |p|) - log(q_b / |q|), where p_b and q_b count the positive and negative reviews
  with an n-gram in bucket b, plus one (Wang and Manning 2012, "Baselines and Bigrams", NBSVM).
  Unlabeled reviews count for neither.
  """
  row_label = tf.gather(label, ids.value_rowids())
  counts = [tf.math.unsorted_segment_sum(tf.cast(tf.equal(row_label, value), tf.float32),
                                         ids.flat_values, num_buckets) for value in (1, 0)]
  positive, negative = tf.unstack(tft.sum(tf.stack(counts)[None], reduce_instance_dims=False))
  log_ratios = (tf.math.log((positive + 1) / tf.reduce_sum(positive + 1))
                - tf.math.log((negative + 1) / tf.reduce_sum(negative + 1)))
  return tf.ragged.map_flat_values(tf.gather, log_ratios, ids)


def _position_hashes(text: tf.Tensor, sequence_length: int) -> tf.Tensor:
  """A deterministic 62-bit hash for each (text, position): shape [batch, sequence_length]."""
  text_fingerprint = tf.strings.as_string(tf.strings.to_hash_bucket_fast(text, _HASH_BUCKETS))
  positions = tf.strings.as_string(tf.range(sequence_length))
  keys = text_fingerprint[:, None] + ':' + positions[None, :]  # String `+` broadcasts.
  return tf.strings.to_hash_bucket_fast(keys, _HASH_BUCKETS)


def mask_tokens(text: tf.Tensor, token_ids: tf.Tensor, sequence_length: int) -> Dict[str, tf.Tensor]:
  """BERT masking of `token_ids`, seeded by `text`.

  Selects round(15%) of the real tokens (never [CLS], [SEP] or padding; at least one) and
  replaces 80% of those with [MASK], 10% with a random vocabulary token, 10% unchanged.

  Returns:
    The masked ids, and per prediction slot the position, original id and weight.
  """
  num_predictions = features.max_predictions(sequence_length)
  hashes = _position_hashes(text, sequence_length)
  selection_draw = tf.cast(hashes % _SELECTION_BITS, tf.float32) / _SELECTION_BITS
  action_draw = tf.cast(hashes // _SELECTION_BITS % _ACTION_BITS, tf.float32) / _ACTION_BITS
  vocabulary_size = tf.cast(
      tft.experimental.get_vocabulary_size_by_name(features.VOCABULARY_NAME), tf.int64)
  random_ids = features.NUM_SPECIAL_TOKENS + (
      hashes // (_SELECTION_BITS * _ACTION_BITS) % tf.maximum(vocabulary_size, 1))

  is_real = token_ids >= features.NUM_SPECIAL_TOKENS
  is_real |= tf.equal(token_ids, features.UNK_ID)
  num_real = tf.reduce_sum(tf.cast(is_real, tf.float32), axis=1)
  num_selected = tf.clip_by_value(
      tf.round(num_real * features.MASK_SELECTION_RATE), 1.0, float(num_predictions))
  # The real tokens with the smallest draws are selected: exactly num_selected of them.
  scores = tf.where(is_real, 1.0 - selection_draw, -1.0)
  _, positions = tf.math.top_k(scores, k=num_predictions)
  positions = tf.cast(positions, tf.int64)
  slot = tf.range(num_predictions, dtype=tf.float32)[None, :]
  in_use = (slot < num_selected[:, None]) & (tf.gather(scores, positions, batch_dims=1) >= 0.0)
  positions = tf.where(in_use, positions, 0)
  weights = tf.cast(in_use, tf.float32)

  selected = tf.reduce_any(
      tf.cast(tf.one_hot(positions, sequence_length), tf.bool) & in_use[:, :, None], axis=1)
  masked_ids = tf.where(
      selected & (action_draw < features.MASK_TOKEN_RATE),
      tf.constant(features.MASK_ID, tf.int64),
      tf.where(
          selected & (action_draw < features.MASK_TOKEN_RATE + features.RANDOM_TOKEN_RATE),
          random_ids, token_ids))
  return {
      features.MLM_TOKEN_IDS_KEY: masked_ids,
      features.MLM_POSITIONS_KEY: positions,
      features.MLM_LABELS_KEY: tf.gather(token_ids, positions, batch_dims=1) * tf.cast(in_use, tf.int64),
      features.MLM_WEIGHTS_KEY: weights,
  }


def preprocessing_fn(inputs: Dict[str, tf.Tensor], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
  """tf.Transform callback: raw review features to model features.

  Args:
    inputs: Raw features: `text` (string) and `label` (int64, -1 when unlabeled), each
      [batch] or [batch, 1] as the schema's shape says.
    custom_config: A `config.TransformConfig`, as the pipeline serialized it.

  Returns:
    Clean `token_ids`, the MLM features, `ngram_ids` with their `ngram_log_ratios`, and
    `label` ([batch]).
  """
  settings = config.TransformConfig.from_custom_config(custom_config)
  sequence_length = settings.sequence_length
  text = tf.reshape(inputs[features.TEXT_KEY], [-1])
  tokens = tf.strings.split(standardize(text))
  words = head_and_tail(tokens, sequence_length - 2)
  token_ids = _token_ids(tokens, words, sequence_length, settings.vocabulary_size)
  outputs = mask_tokens(text, token_ids, sequence_length)
  outputs[features.TOKEN_IDS_KEY] = token_ids
  label = tf.reshape(inputs[features.LABEL_KEY], [-1])
  if settings.ngram_buckets:
    ids = ngram_ids(tokens, settings.ngram_buckets)
    log_ratios = ngram_log_ratios(ids, label, settings.ngram_buckets)
    shape = [None, features.MAX_NGRAMS_PER_REVIEW]
    outputs[features.NGRAM_IDS_KEY] = ids.to_tensor(features.PAD_ID, shape=shape)
    outputs[features.NGRAM_LOG_RATIOS_KEY] = log_ratios.to_tensor(0.0, shape=shape)
  outputs[features.LABEL_KEY] = label
  return outputs
