"""The Keras models of modules/models.py, built small and run."""

import keras_hub
import numpy as np

from modules import features, models

SEQUENCE_LENGTH = 16
VOCABULARY_SIZE = 50
ENCODER = {'num_layers': 1, 'num_heads': 2, 'hidden_dim': 8, 'intermediate_dim': 16, 'dropout': 0.0}


def _token_ids(rng, batch=3):
  return rng.integers(features.NUM_SPECIAL_TOKENS, VOCABULARY_SIZE, (batch, SEQUENCE_LENGTH))


def test_masked_lm_head_computes_what_keras_hubs_does():
  rng = np.random.default_rng(0)
  encoder = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER)
  masked_lm = models.build_masked_lm(encoder, num_predictions=4)
  ours = masked_lm.get_layer('masked_lm_head')
  reference = keras_hub.layers.MaskedLMHead(
      token_embedding=encoder.token_embedding, intermediate_activation='gelu')
  sequence = rng.normal(size=(3, SEQUENCE_LENGTH, ENCODER['hidden_dim'])).astype('float32')
  positions = rng.integers(0, SEQUENCE_LENGTH, (3, 4))
  reference(sequence, mask_positions=positions)
  for weight in ours.weights:  # Random, so that a mix-up of weights shows.
    weight.assign(rng.normal(size=weight.shape))
  for weight, source in zip(reference.weights, ours.weights):
    weight.assign(source)
  np.testing.assert_allclose(ours(sequence, mask_positions=positions),
                             reference(sequence, mask_positions=positions), rtol=1e-5, atol=1e-5)


def test_classifier_adds_a_linear_model_of_the_ngrams_to_the_encoders_logit():
  rng = np.random.default_rng(1)
  encoder = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER)
  bert_only = models.build_classifier(encoder, dropout=0.0)
  with_ngrams = models.build_classifier(encoder, dropout=0.0, ngram_buckets=10)
  with_ngrams.get_layer('sentiment_logit').set_weights(bert_only.get_layer('sentiment_logit').get_weights())
  weights = rng.normal(size=(10, 1)).astype('float32')
  with_ngrams.get_layer(models.NGRAM_WEIGHTS_LAYER).set_weights([weights])
  token_ids = _token_ids(rng)
  ngram_ids = np.zeros((3, features.MAX_NGRAMS_PER_REVIEW), np.int64)
  log_ratios = np.zeros((3, features.MAX_NGRAMS_PER_REVIEW), np.float32)
  ngram_ids[0, :2], log_ratios[0, :2] = [4, 7], [0.5, -2.0]
  ngram_ids[1, :1], log_ratios[1, :1] = [9], [1.5]
  # The third review has no n-grams: the encoder's logit alone.

  logits = with_ngrams.predict({features.TOKEN_IDS_KEY: token_ids, features.NGRAM_IDS_KEY: ngram_ids,
                                features.NGRAM_LOG_RATIOS_KEY: log_ratios}, verbose=0)[:, 0]
  encoder_logits = bert_only.predict({features.TOKEN_IDS_KEY: token_ids}, verbose=0)[:, 0]
  scale = models.NGRAM_WEIGHT_SCALE
  np.testing.assert_allclose(logits - encoder_logits, [
      scale * (0.5 * weights[4, 0] - 2.0 * weights[7, 0]), scale * 1.5 * weights[9, 0], 0.0],
      rtol=1e-4, atol=1e-4)
  assert sorted(models.classifier_inputs(with_ngrams)) == sorted(
      [features.NGRAM_IDS_KEY, features.NGRAM_LOG_RATIOS_KEY, features.TOKEN_IDS_KEY])
  assert models.classifier_inputs(bert_only) == [features.TOKEN_IDS_KEY]
