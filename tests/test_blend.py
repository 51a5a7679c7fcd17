"""The ClassifierTrainer's blend of its parts, fitted on held-out reviews, on a small real model."""

import numpy as np
import tensorflow as tf

from modules import classifier_trainer, config, features, models

SEQUENCE_LENGTH = 16
VOCABULARY_SIZE = 50
NGRAM_BUCKETS = 20
ENCODER = config.EncoderConfig(num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)


def test_logistic_regression_recovers_the_coefficients_that_drew_the_labels():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50_000, 2))
  y = (rng.random(50_000) < 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))).astype(float)
  weights, bias = classifier_trainer._logistic_regression(x, y)  # pylint: disable=protected-access
  np.testing.assert_allclose(weights, [2.0, -1.0], atol=0.08)
  assert abs(bias - 0.5) < 0.08


def _eval_dataset(rng, reviews: int, batch_size: int) -> tf.data.Dataset:
  """Reviews of one n-gram each, labeled by that n-gram's sign; the encoder's logit is noise."""
  ngram_ids = np.zeros((reviews, features.MAX_NGRAMS_PER_REVIEW), np.int64)
  log_ratios = np.zeros((reviews, features.MAX_NGRAMS_PER_REVIEW), np.float32)
  ngram_ids[:, 0] = rng.integers(1, NGRAM_BUCKETS, reviews)
  log_ratios[:, 0] = rng.choice([-1.0, 1.0], reviews)
  inputs = {features.TOKEN_IDS_KEY: rng.integers(features.NUM_SPECIAL_TOKENS, VOCABULARY_SIZE,
                                                 (reviews, SEQUENCE_LENGTH)),
            features.NGRAM_IDS_KEY: ngram_ids, features.NGRAM_LOG_RATIOS_KEY: log_ratios}
  labels = np.tile((log_ratios[:, :1] > 0).astype(np.float32), [1, 2])
  return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch_size)


def test_the_blend_is_fitted_on_eval_and_leans_on_the_part_that_predicts_it():
  rng = np.random.default_rng(1)
  model = models.build_classifier(
      models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0), 0.0, NGRAM_BUCKETS)
  model.get_layer(models.NGRAM_WEIGHTS_LAYER).set_weights([np.full((NGRAM_BUCKETS, 1), 0.05, np.float32)])
  parts = models.part_logits(model)
  dataset = _eval_dataset(rng, reviews=96, batch_size=32)

  fitted = classifier_trainer._fit_blend(model, parts, dataset, eval_steps=3)  # pylint: disable=protected-access

  assert fitted['eval_reviews'] == 96
  assert fitted['eval_accuracy']['ngrams'] == 1.0 and fitted['eval_accuracy']['blend'] == 1.0
  assert 0.3 < fitted['eval_accuracy']['encoder'] < 0.7
  assert fitted['weights']['ngrams'] > 10 * abs(fitted['weights']['encoder'])
  # The classifier's logit is now the fitted blend of its parts.
  inputs, _ = next(iter(dataset))
  logits = parts.predict_on_batch(inputs)
  expected = (logits @ np.array([fitted['weights']['encoder'], fitted['weights']['ngrams']])
              + fitted['bias'])
  np.testing.assert_allclose(model.predict_on_batch(inputs)[:, 0], expected, rtol=1e-4, atol=1e-4)
