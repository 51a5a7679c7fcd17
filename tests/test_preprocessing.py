"""preprocessing_fn through real tf.Transform on Beam."""

import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from modules import features, preprocessing
from tests.conftest import make_review, transform_reviews

SEQUENCE_LENGTH = 64
VOCABULARY_SIZE = 40
NGRAM_BUCKETS = 1_000


def _transform(reviews, labels, tmp_path):
  """Runs analyze-and-transform on Beam; returns the transformed rows and the vocabulary."""
  rows, transform_dir = transform_reviews(reviews, labels, tmp_path, SEQUENCE_LENGTH,
                                          VOCABULARY_SIZE, NGRAM_BUCKETS)
  vocabulary = tft.TFTransformOutput(transform_dir).vocabulary_by_name(features.VOCABULARY_NAME)
  return rows, [token.decode() for token in vocabulary]


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  """400 generated reviews (every fifth unlabeled), a long one and a short one, transformed."""
  rng = random.Random(7)
  labels = [features.UNLABELED if i % 5 == 4 else 1 - i % 2 for i in range(400)] + [0, 1]
  reviews = [make_review(rng, positive=i % 2 == 0) for i in range(400)]
  reviews.append(' '.join(f'word{i}' for i in range(3 * SEQUENCE_LENGTH)))
  reviews.append('Short<br />REVIEW, with: punctuation!!')
  return (reviews, labels), _transform(reviews, labels, tmp_path_factory.mktemp('first'))


def test_standardize_lowercases_and_strips_breaks_and_punctuation():
  text = tf.constant(['Great<br /><br />Movie, truly... GREAT!'])
  assert tf.strings.split(preprocessing.standardize(text)).to_list() == [
      [b'great', b'movie', b'truly', b'great']]


def test_long_reviews_keep_their_head_and_tail():
  words = tf.ragged.constant([['a', 'b', 'c'], [str(i) for i in range(20)], []])
  kept = preprocessing.head_and_tail(words, room=8).to_list()
  head = int(8 * features.HEAD_SHARE)
  assert kept[0] == [b'a', b'b', b'c'] and kept[2] == []
  assert kept[1] == [str(i).encode() for i in list(range(head)) + list(range(20 - 8 + head, 20))]


def test_token_ids_have_fixed_shape_and_special_tokens(transformed):
  _, (rows, vocabulary) = transformed
  assert len(vocabulary) <= VOCABULARY_SIZE - features.NUM_SPECIAL_TOKENS
  for row in rows:
    ids = row[features.TOKEN_IDS_KEY]
    assert ids.shape == (SEQUENCE_LENGTH,)
    assert ids[0] == features.CLS_ID
    length = int(np.sum(ids != features.PAD_ID))
    assert ids[length - 1] == features.SEP_ID
    assert np.all(ids[length:] == features.PAD_ID)
    assert np.all(ids[1:length - 1] >= features.UNK_ID)
    assert features.MASK_ID not in ids  # Clean ids never carry masks.
  short = rows[-1][features.TOKEN_IDS_KEY]
  words = [vocabulary[i - features.NUM_SPECIAL_TOKENS] if i >= features.NUM_SPECIAL_TOKENS
           else features.SPECIAL_TOKENS[i] for i in short[1:6]]
  expected = [word if word in vocabulary else features.UNK_TOKEN
              for word in ('short', 'review', 'with', 'punctuation')]
  assert words == expected + [features.SEP_TOKEN]


def _distinct_ngram_buckets(review: str) -> list:
  """The hash buckets of a review's distinct unigrams and bigrams, in order of appearance."""
  words = [word.decode() for word in
           tf.strings.split(preprocessing.standardize(tf.constant([review]))).to_list()[0]]
  ngrams = words + [f'{first} {second}' for first, second in zip(words, words[1:], strict=False)]
  buckets = tf.strings.to_hash_bucket_fast(ngrams, NGRAM_BUCKETS - 1).numpy() + 1
  return list(dict.fromkeys(buckets.tolist()))


def test_ngram_ids_hash_every_distinct_unigram_and_bigram_of_the_review(transformed):
  (reviews, _), (rows, _) = transformed
  for review, row in zip(reviews, rows, strict=True):
    ngram_ids = row[features.NGRAM_IDS_KEY]
    assert ngram_ids.shape == (features.MAX_NGRAMS_PER_REVIEW,)
    expected = _distinct_ngram_buckets(review)
    np.testing.assert_array_equal(ngram_ids[:len(expected)], expected)
    assert np.all(ngram_ids[len(expected):] == features.PAD_ID)
  # The long review's last bigram counts, though its middle words never reach the encoder.
  assert len(_distinct_ngram_buckets(reviews[-2])) > 2 * SEQUENCE_LENGTH
  # Hashes of the strings: the same n-gram has the same bucket whatever the vocabulary.
  expected = tf.strings.to_hash_bucket_fast(
      ['short', 'review', 'with', 'punctuation', 'short review', 'review with',
       'with punctuation'], NGRAM_BUCKETS - 1).numpy() + 1
  np.testing.assert_array_equal(rows[-1][features.NGRAM_IDS_KEY][:7], expected)


def test_ngram_log_ratios_are_naive_bayes_log_count_ratios_of_the_labeled_reviews(transformed):
  (_, labels), (rows, _) = transformed
  # Reviews with each bucket, by label, plus one; unlabeled reviews count for neither.
  counts = {label: np.ones(NGRAM_BUCKETS) for label in (0, 1)}
  for label, row in zip(labels, rows, strict=True):
    if label != features.UNLABELED:
      ids = row[features.NGRAM_IDS_KEY]
      counts[label][ids[ids != features.PAD_ID]] += 1
  expected = np.log(counts[1] / counts[1].sum()) - np.log(counts[0] / counts[0].sum())
  for row in rows:
    ids, log_ratios = row[features.NGRAM_IDS_KEY], row[features.NGRAM_LOG_RATIOS_KEY]
    real = ids != features.PAD_ID
    np.testing.assert_allclose(log_ratios[real], expected[ids[real]], rtol=1e-4, atol=1e-5)
    assert np.all(log_ratios[~real] == 0.0)
  # Sentiment words lean the way of their label.
  great, awful = _distinct_ngram_buckets('great awful')[:2]
  assert expected[great] > 0.5 > -0.5 > expected[awful]


def test_masking_statistics(transformed):
  _, (rows, _) = transformed
  selected = real = masked = randomized = unchanged = 0
  for row in rows:
    clean, noisy = row[features.TOKEN_IDS_KEY], row[features.MLM_TOKEN_IDS_KEY]
    weights = row[features.MLM_WEIGHTS_KEY]
    positions = row[features.MLM_POSITIONS_KEY][weights > 0]
    originals = row[features.MLM_LABELS_KEY][weights > 0]
    is_real = (clean >= features.NUM_SPECIAL_TOKENS) | (clean == features.UNK_ID)
    assert is_real[positions].all(), 'a special token or padding was selected'
    assert len(set(positions)) == len(positions)
    np.testing.assert_array_equal(originals, clean[positions])
    untouched = np.ones_like(clean, dtype=bool)
    untouched[positions] = False
    np.testing.assert_array_equal(noisy[untouched], clean[untouched])
    real += is_real.sum()
    selected += len(positions)
    masked += np.sum(noisy[positions] == features.MASK_ID)
    unchanged += np.sum(noisy[positions] == clean[positions])
    randomized += np.sum((noisy[positions] != clean[positions]) & (noisy[positions] != features.MASK_ID))
  assert real > 5000
  assert selected / real == pytest.approx(0.15, abs=0.01)
  assert masked / selected == pytest.approx(0.8, abs=0.04)
  # A random token can by chance equal the original, so a little of the 10% moves to unchanged.
  assert randomized / selected == pytest.approx(0.1, abs=0.03)
  assert unchanged / selected == pytest.approx(0.1, abs=0.04)


def test_masking_is_deterministic_across_runs(transformed, tmp_path):
  (reviews, labels), (rows, _) = transformed
  rerun, _ = _transform(reviews, labels, tmp_path)
  for first, second in zip(rows, rerun, strict=True):
    for key in (features.MLM_TOKEN_IDS_KEY, features.MLM_POSITIONS_KEY, features.MLM_WEIGHTS_KEY):
      np.testing.assert_array_equal(first[key], second[key])
