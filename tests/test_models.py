"""The Keras models of modules/models.py, built small and run."""

import keras_hub
import numpy as np

from modules import features, models

SEQUENCE_LENGTH = 16
VOCABULARY_SIZE = 50
ENCODER = {'num_layers': 1, 'num_heads': 2, 'hidden_dim': 8, 'intermediate_dim': 16, 'dropout': 0.0}


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
