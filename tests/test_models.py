"""The Keras models of modules/models.py, built small and run."""

import dataclasses

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from modules import config, features, models

SEQUENCE_LENGTH = 16
VOCABULARY_SIZE = 50
ENCODER = config.EncoderConfig(num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)


def _token_ids(rng, batch=3):
  return rng.integers(features.NUM_SPECIAL_TOKENS, VOCABULARY_SIZE, (batch, SEQUENCE_LENGTH))


@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('tied', [True, False])
def test_masked_lm_head_computes_what_keras_hubs_does_with_the_same_gradients(tied, jit_compile):
  rng = np.random.default_rng(0)
  encoder = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0)
  masked_lm = models.build_masked_lm(encoder, num_predictions=4, tie_word_embeddings=tied)
  ours = masked_lm.get_layer('masked_lm_head')
  reference = keras_hub.layers.MaskedLMHead(
      vocabulary_size=VOCABULARY_SIZE, token_embedding=encoder.token_embedding if tied else None,
      intermediate_activation='gelu')
  sequence = tf.constant(rng.normal(size=(3, SEQUENCE_LENGTH, ENCODER.hidden_dim)), tf.float32)
  positions = rng.integers(0, SEQUENCE_LENGTH, (3, 4))
  reference(sequence, mask_positions=positions)
  for weight in ours.weights:  # Random, so that a mix-up of weights shows.
    weight.assign(rng.normal(size=weight.shape))
  # Untied, the token embedding is the encoder's alone and the head projects with an output
  # embedding of its own, [vocabulary, width], where keras-hub's kernel is [width, vocabulary].
  projection = ours.token_embedding
  assert (projection is encoder.token_embedding) == tied
  shares_embedding = any(weight is encoder.token_embedding.embeddings for weight in ours.weights)
  assert shares_embedding == tied
  assert any(weight is projection.embeddings for weight in ours.weights)
  assert projection.embeddings.shape == (VOCABULARY_SIZE, ENCODER.hidden_dim)
  if not tied:
    reference._kernel.assign(tf.transpose(projection.embeddings))  # pylint: disable=protected-access
  for layer in ('_intermediate_dense', '_intermediate_layer_norm'):
    getattr(reference, layer).set_weights(getattr(ours, layer).get_weights())
  reference._bias.assign(ours._bias)  # pylint: disable=protected-access
  # Gradients of a random weighing of the logits, so that each logit's gradient counts.
  upstream = tf.constant(rng.normal(size=(3, 4, VOCABULARY_SIZE)), tf.float32)

  def logits_and_gradients(head, projection_weight):
    weights = [weight for weight in head.trainable_weights if weight is not projection_weight]

    @tf.function(jit_compile=jit_compile)
    def run():
      with tf.GradientTape() as tape:
        tape.watch(sequence)
        logits = head(sequence, mask_positions=positions)
        total = tf.reduce_sum(logits * upstream)
      gradients = tape.gradient(total, [sequence, projection_weight] + weights)
      return logits, gradients
    logits, gradients = run()
    return logits.numpy(), [gradient.numpy() for gradient in gradients]

  our_logits, our_gradients = logits_and_gradients(ours, projection.embeddings)
  reference_logits, reference_gradients = logits_and_gradients(
      reference, projection.embeddings if tied else reference._kernel)  # pylint: disable=protected-access
  if not tied:
    reference_gradients[1] = reference_gradients[1].T
  np.testing.assert_allclose(our_logits, reference_logits, rtol=1e-5, atol=1e-5)
  assert len(our_gradients) == len(reference_gradients) == 7
  for our_gradient, reference_gradient in zip(our_gradients, reference_gradients, strict=True):
    np.testing.assert_allclose(our_gradient, reference_gradient, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('tied', [True, False])
def test_under_mixed_bfloat16_xla_multiplies_the_heads_matrices_in_bfloat16(tied):
  # Shapes at which XLA's CPU compiler hands the head's matmuls to oneDNN: the `default` preset's
  # width and masked positions per batch (64 x 39), a smaller vocabulary.
  wider = dataclasses.replace(ENCODER, hidden_dim=128, intermediate_dim=256)
  encoder = models.build_encoder(2_000, SEQUENCE_LENGTH, wider, dropout=0.0,
                                 dtype_policy='mixed_bfloat16')
  masked_lm = models.build_masked_lm(encoder, num_predictions=39, tie_word_embeddings=tied)
  rng = np.random.default_rng(5)
  model_inputs = {features.TOKEN_IDS_KEY: tf.constant(_token_ids(rng, batch=64)),
                  models.MASK_POSITIONS_INPUT: tf.constant(rng.integers(0, SEQUENCE_LENGTH, (64, 39)))}

  def logits_and_gradients(model_inputs):
    with tf.GradientTape() as tape:
      logits = masked_lm(model_inputs, training=True)
      total = tf.reduce_sum(logits * logits)
    return logits, tape.gradient(total, masked_lm.trainable_variables)

  hlo = tf.function(logits_and_gradients, jit_compile=True).experimental_get_compiler_ir(
      model_inputs)(stage='optimized_hlo')
  # The head's matmuls and their gradients: those whose result has 2,496 rows (the masked
  # positions) or 2,000 (the vocabulary). Each in bfloat16, the logits' first.
  dots = [line.split('=', 1)[1].split('(')[0].split()[0] for line in hlo.splitlines()
          if ' dot(' in line or '__onednn$matmul' in line]
  head_dots = [shape.split('{')[0] for shape in dots if shape.split('[')[1].startswith(('2496,', '2000,'))]
  assert 'bf16[2496,2000]' in head_dots, dots
  assert all(shape.startswith('bf16[') for shape in head_dots), head_dots
  logits, _ = logits_and_gradients(model_inputs)
  assert logits.dtype == tf.float32


def test_an_encoder_without_a_dtype_policy_follows_keras_global_policy():
  keras.config.set_dtype_policy('mixed_bfloat16')
  try:
    mixed = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0)
  finally:
    keras.config.set_dtype_policy('float32')
  assert mixed.compute_dtype == 'bfloat16'
  single = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0)
  assert single.compute_dtype == 'float32'


def test_an_encoder_in_float32_computes_what_it_did_in_bfloat16_with_the_same_weights():
  mixed = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0,
                               dtype_policy='mixed_bfloat16')
  single = models.in_float32(mixed)
  assert models.in_float32(single) is single
  token_ids = _token_ids(np.random.default_rng(6))
  outputs = [encoder({'token_ids': token_ids, 'segment_ids': np.zeros_like(token_ids),
                      'padding_mask': np.ones_like(token_ids)})['sequence_output']
             for encoder in (mixed, single)]
  assert (outputs[0].dtype, outputs[1].dtype) == (tf.bfloat16, tf.float32)
  for weight, copied in zip(mixed.weights, single.weights, strict=True):
    assert weight.dtype == copied.dtype == 'float32'
    np.testing.assert_array_equal(weight.numpy(), copied.numpy())
  np.testing.assert_allclose(tf.cast(outputs[0], tf.float32), outputs[1], atol=0.1)


def test_masked_token_accuracy_is_sparse_categorical_accuracy_and_counts_a_tie_as_a_hit():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, VOCABULARY_SIZE, (4, 5))
  logits = rng.normal(size=(4, 5, VOCABULARY_SIZE)).astype('float32')
  # A third of the labels made the highest logit, so that hits and misses both count.
  hits = rng.random((4, 5)) < 1 / 3
  np.put_along_axis(logits, labels[..., None], np.where(hits, 10.0, logits.min() - 1)[..., None], -1)
  weights = rng.integers(0, 2, (4, 5)).astype('float32')
  ours, reference = models.MaskedTokenAccuracy(), keras.metrics.SparseCategoricalAccuracy()
  for metric in (ours, reference):
    metric.update_state(labels, logits, sample_weight=weights)
  assert 0 < float(reference.result()) < 1
  np.testing.assert_allclose(float(ours.result()), float(reference.result()), rtol=1e-6)
  assert ours.name == 'masked_accuracy'
  # The label ties with another id for the highest logit: argmax may pick either, this metric the label.
  tied = np.zeros((1, 1, VOCABULARY_SIZE), 'float32')
  tied[0, 0, [3, 7]] = 1.0
  ours.reset_state()
  ours.update_state(np.array([[7]]), tied)
  assert float(ours.result()) == 1.0


@pytest.mark.parametrize('jit_compile', [False, True])
def test_masked_lm_cross_entropy_has_the_values_and_gradients_of_keras_sparse_cross_entropy(jit_compile):
  rng = np.random.default_rng(4)
  labels = rng.integers(0, VOCABULARY_SIZE, (4, 5))
  # Far apart: a softmax not shifted by the row's max would overflow. One row's logits all
  # negative, another's all positive, so that the max's keys are tried on both signs.
  logits = (rng.normal(size=(4, 5, VOCABULARY_SIZE)) * 300).astype('float32')
  logits[0] = -np.abs(logits[0]) - 1.0
  logits[1] = np.abs(logits[1]) + 1.0
  logits[2, 0, :3] = logits[2, 0].max() + 1.0  # A tie for the max.
  weights = rng.integers(0, 2, (4, 5)).astype('float32')

  def loss_and_gradient(loss):
    variable = tf.Variable(logits)

    @tf.function(jit_compile=jit_compile)
    def run():
      with tf.GradientTape() as tape:
        value = loss(labels, variable, sample_weight=weights)
      return value, tape.gradient(value, variable)
    return [t.numpy() for t in run()]

  ours = loss_and_gradient(models.MaskedLMCrossEntropy())
  reference = loss_and_gradient(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  assert np.all(np.isfinite(reference[0])) and reference[0] > 1.0
  np.testing.assert_allclose(ours[0], reference[0], rtol=1e-6)
  np.testing.assert_allclose(ours[1], reference[1], rtol=1e-5, atol=1e-7)


def _classifier_inputs(rng, ngram_buckets):
  """Three reviews: two with n-grams, the third with none (its n-gram logit is 0)."""
  ngram_ids = np.zeros((3, features.MAX_NGRAMS_PER_REVIEW), np.int64)
  log_ratios = np.zeros((3, features.MAX_NGRAMS_PER_REVIEW), np.float32)
  ngram_ids[0, :2], log_ratios[0, :2] = [4, 7], [0.5, -2.0]
  ngram_ids[1, :1], log_ratios[1, :1] = [9], [1.5]
  assert ngram_ids.max() < ngram_buckets
  return {features.TOKEN_IDS_KEY: _token_ids(rng), features.NGRAM_IDS_KEY: ngram_ids,
          features.NGRAM_LOG_RATIOS_KEY: log_ratios}


def test_classifier_parts_are_the_encoders_logit_and_a_linear_model_of_the_ngrams():
  rng = np.random.default_rng(1)
  encoder = models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0)
  bert_only = models.build_classifier(encoder, dropout=0.0)
  with_ngrams = models.build_classifier(encoder, dropout=0.0, ngram_buckets=10)
  with_ngrams.get_layer('sentiment_logit').set_weights(bert_only.get_layer('sentiment_logit').get_weights())
  weights = rng.normal(size=(10, 1)).astype('float32')
  with_ngrams.get_layer(models.NGRAM_WEIGHTS_LAYER).set_weights([weights])
  inputs = _classifier_inputs(rng, ngram_buckets=10)

  parts = models.part_logits(with_ngrams).predict(inputs, verbose=0)
  encoder_logits = models.part_logits(bert_only).predict(
      {features.TOKEN_IDS_KEY: inputs[features.TOKEN_IDS_KEY]}, verbose=0)
  assert parts.shape == (3, 2) and encoder_logits.shape == (3, 1)
  np.testing.assert_allclose(parts[:, 0], encoder_logits[:, 0], rtol=1e-5, atol=1e-5)
  scale = models.NGRAM_WEIGHT_SCALE
  np.testing.assert_allclose(parts[:, 1], [
      scale * (0.5 * weights[4, 0] - 2.0 * weights[7, 0]), scale * 1.5 * weights[9, 0], 0.0],
      rtol=1e-4, atol=1e-4)
  assert sorted(models.classifier_inputs(with_ngrams)) == sorted(
      [features.NGRAM_IDS_KEY, features.NGRAM_LOG_RATIOS_KEY, features.TOKEN_IDS_KEY])
  assert models.classifier_inputs(bert_only) == [features.TOKEN_IDS_KEY]


def test_classifier_logit_is_the_blend_of_its_parts_which_gradients_leave_alone():
  rng = np.random.default_rng(2)
  model = models.build_classifier(
      models.build_encoder(VOCABULARY_SIZE, SEQUENCE_LENGTH, ENCODER, dropout=0.0), dropout=0.0,
      ngram_buckets=10)
  model.get_layer(models.NGRAM_WEIGHTS_LAYER).set_weights([rng.normal(size=(10, 1)).astype('float32')])
  inputs = _classifier_inputs(rng, ngram_buckets=10)
  parts = models.part_logits(model).predict(inputs, verbose=0)
  np.testing.assert_allclose(model.predict(inputs, verbose=0)[:, 0], parts.sum(axis=1), rtol=1e-5, atol=1e-5)

  model.get_layer(models.BLEND_LAYER).set_weights([np.array([[0.5], [2.0]]), np.array([-1.0])])
  np.testing.assert_allclose(model.predict(inputs, verbose=0)[:, 0], 0.5 * parts[:, 0] + 2 * parts[:, 1] - 1,
                             rtol=1e-5, atol=1e-5)
  blend_weights = {id(weight) for weight in model.get_layer(models.BLEND_LAYER).weights}
  assert not blend_weights & {id(weight) for weight in models.part_logits(model).trainable_weights}
  assert not blend_weights & {id(weight) for weight in model.trainable_weights}
