"""The ClassifierTrainer's warm start from a saved classifier, on small real Keras models."""

import dataclasses

import keras
import keras_hub
import numpy as np
import pytest

from modules import classifier_trainer, config, features, models

SEQUENCE_LENGTH = 16
ENCODER = config.EncoderConfig(num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
VOCABULARY = list(features.SPECIAL_TOKENS) + ['good', 'bad', 'movie', 'plot']


def _save_classifier(directory, ngram_buckets: int, vocabulary=VOCABULARY, encoder=ENCODER):
  """A classifier with random (non-zero) weights, saved as the ClassifierTrainer saves it."""
  model = models.build_classifier(
      models.build_encoder(len(vocabulary), SEQUENCE_LENGTH, encoder, dropout=0.0), 0.0, ngram_buckets)
  rng = np.random.default_rng(0)
  model.set_weights([rng.normal(size=weight.shape).astype('float32') for weight in model.weights])
  classifier_trainer._save_for_warm_start(model, vocabulary, str(directory))  # pylint: disable=protected-access
  return model


def _warm_started(directory, ngram_buckets: int, vocabulary=VOCABULARY):
  return classifier_trainer._warm_started(  # pylint: disable=protected-access
      str(directory), vocabulary, SEQUENCE_LENGTH,
      config.TrainerConfig(
          encoder=ENCODER, ngram_buckets=ngram_buckets,
          training=config.TrainingConfig(steps=1, eval_steps=1, batch_size=1, epochs=1,
                                         learning_rate=0.0, dropout=0.0, head_dropout=0.0)))


def _token_embedding(model):
  encoder, = [layer for layer in model.layers if isinstance(layer, keras_hub.models.BertBackbone)]
  return encoder.token_embedding.embeddings


def _other_weights(model):
  """The encoder's and the head's weights but the token embedding."""
  return [keras.ops.convert_to_numpy(weight)
          for weight in classifier_trainer._deep_weights(model)  # pylint: disable=protected-access
          if weight is not _token_embedding(model)]


def _ngram_weights(model):
  return model.get_layer(models.NGRAM_WEIGHTS_LAYER).get_weights()[0]


def test_everything_continues_and_moved_tokens_keep_their_embedding(tmp_path):
  saved = _save_classifier(tmp_path, ngram_buckets=32)
  moved = VOCABULARY[:features.NUM_SPECIAL_TOKENS] + ['plot', 'movie', 'new', 'good']
  model = _warm_started(tmp_path, 32, moved)
  np.testing.assert_array_equal(_ngram_weights(model), _ngram_weights(saved))
  embedding, saved_embedding = _token_embedding(model).numpy(), _token_embedding(saved).numpy()
  for token in ('plot', 'movie', 'good', features.MASK_TOKEN):
    np.testing.assert_array_equal(embedding[moved.index(token)], saved_embedding[VOCABULARY.index(token)])
  for kept, previous in zip(_other_weights(model), _other_weights(saved), strict=True):
    np.testing.assert_array_equal(kept, previous)


@pytest.mark.parametrize('saved_buckets', [0, 16])
def test_an_ngram_part_that_does_not_fit_starts_from_zero_and_the_encoder_continues(tmp_path, saved_buckets):
  saved = _save_classifier(tmp_path, ngram_buckets=saved_buckets)
  model = _warm_started(tmp_path, 32)
  assert not np.any(_ngram_weights(model))
  np.testing.assert_array_equal(_token_embedding(model).numpy(), _token_embedding(saved).numpy())
  for kept, previous in zip(_other_weights(model), _other_weights(saved), strict=True):
    np.testing.assert_array_equal(kept, previous)


def test_another_encoder_size_is_refused_naming_the_weight(tmp_path):
  _save_classifier(tmp_path, ngram_buckets=32, encoder=dataclasses.replace(ENCODER, hidden_dim=4))
  with pytest.raises(ValueError, match='Cannot warm-start from .* is .* there and .* here; the model size'):
    _warm_started(tmp_path, 32)
