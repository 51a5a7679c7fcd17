"""The Trainers' run_fns: what a seed fixes, and how fine-tuning takes over the pretrained encoder."""

import json
import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import (classifier_trainer, config, features, inputs, models, outputs,
                     pretrain_trainer, training)
from tests.conftest import trainer_fn_args


def _train_classifier(workdir, transform_dir, name: str, seed: int) -> str:
  """Fine-tunes a random encoder with dropout for a few steps; the digest of its weights."""
  fn_args = trainer_fn_args(workdir, transform_dir, name, epochs=1, steps_per_epoch=3, seed=seed,
                            dropout=0.1, head_dropout=0.1)
  classifier_trainer.run_fn(FnArgs(**fn_args))
  return training.weights_digest(keras.saving.load_model(
      os.path.join(fn_args['serving_model_dir'], outputs.CLASSIFIER_FILE)))


def test_the_same_seed_trains_the_same_weights_and_another_seed_others(transformed):
  workdir, transform_dir = transformed
  first = _train_classifier(workdir, transform_dir, 'seed-0', seed=0)
  assert _train_classifier(workdir, transform_dir, 'seed-0-again', seed=0) == first
  assert _train_classifier(workdir, transform_dir, 'seed-1', seed=1) != first


def test_fine_tuning_starts_from_the_pretrained_weights_with_its_own_dropout(transformed, tmp_path):
  workdir, transform_dir = transformed
  tft_output = tft.TFTransformOutput(transform_dir)
  fn_args = trainer_fn_args(workdir, transform_dir, 'fine-tuning', epochs=1, steps_per_epoch=1,
                            dropout=0.3)
  settings = config.TrainerConfig.from_custom_config(fn_args['custom_config'])
  pretrained = models.build_encoder(*inputs.encoder_shape(tft_output), settings.encoder, dropout=0.0)
  pretrained.save(str(tmp_path / outputs.ENCODER_FILE))

  classifier = classifier_trainer._classifier(  # pylint: disable=protected-access
      FnArgs(**fn_args, base_model=str(tmp_path)), settings, tft_output, vocabulary=[])

  encoder = next(layer for layer in classifier.layers if isinstance(layer, type(pretrained)))
  assert encoder.dropout == 0.3
  for weight, pretrained_weight in zip(encoder.get_weights(), pretrained.get_weights(), strict=True):
    np.testing.assert_array_equal(weight, pretrained_weight)


def test_pretraining_in_bfloat16_saves_a_float32_encoder_that_fine_tuning_starts_from(transformed):
  workdir, transform_dir = transformed
  fn_args = trainer_fn_args(workdir, transform_dir, 'bfloat16', epochs=1, steps_per_epoch=2,
                            dtype_policy='mixed_bfloat16')
  pretrain_trainer.run_fn(FnArgs(**fn_args))

  with open(os.path.join(fn_args['model_run_dir'], outputs.TRAINING_STATS_FILE)) as stats:
    assert json.load(stats)['dtype_policies'] == ['mixed_bfloat16']
  tft_output = tft.TFTransformOutput(transform_dir)
  masked_lm = tf.saved_model.load(fn_args['serving_model_dir'])
  logits = masked_lm.serve({
      features.TOKEN_IDS_KEY: tf.fill([1, inputs.sequence_length(tft_output, features.MLM_TOKEN_IDS_KEY)],
                                      tf.constant(features.MASK_ID, tf.int64)),
      models.MASK_POSITIONS_INPUT: tf.zeros(
          [1, inputs.sequence_length(tft_output, features.MLM_POSITIONS_KEY)], tf.int64)})
  assert logits.dtype == tf.float32
  encoder = keras.saving.load_model(os.path.join(fn_args['serving_model_dir'], outputs.ENCODER_FILE))
  assert {layer.compute_dtype for layer in encoder._flatten_layers()} == {'float32'}

  fine_tuning = trainer_fn_args(workdir, transform_dir, 'from-bfloat16', epochs=1, steps_per_epoch=1)
  classifier = classifier_trainer._classifier(  # pylint: disable=protected-access
      FnArgs(**fine_tuning, base_model=fn_args['serving_model_dir']),
      config.TrainerConfig.from_custom_config(fine_tuning['custom_config']), tft_output,
      vocabulary=[])
  assert {layer.compute_dtype for layer in classifier._flatten_layers()} == {'float32'}
  fine_tuned = next(layer for layer in classifier.layers if isinstance(layer, type(encoder)))
  for weight, pretrained_weight in zip(fine_tuned.get_weights(), encoder.get_weights(), strict=True):
    np.testing.assert_array_equal(weight, pretrained_weight)
