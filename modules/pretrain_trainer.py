"""PretrainTrainer's run_fn: masked-language-model pretraining of the BERT encoder."""

import json
import os

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import config, features, inputs, models, outputs, training

_MLM_KEYS = (features.MLM_TOKEN_IDS_KEY, features.MLM_POSITIONS_KEY,
             features.MLM_LABELS_KEY, features.MLM_WEIGHTS_KEY)


def _masked_lm_batch(parsed):
  """Transformed features → (inputs, original ids, weights) for the masked-LM."""
  model_inputs = {features.TOKEN_IDS_KEY: parsed[features.MLM_TOKEN_IDS_KEY],
                  models.MASK_POSITIONS_INPUT: parsed[features.MLM_POSITIONS_KEY]}
  return model_inputs, parsed[features.MLM_LABELS_KEY], parsed[features.MLM_WEIGHTS_KEY]


def _skip(fn_args: FnArgs, warm_start_model: str, strategy: tf.distribute.Strategy) -> None:
  """Writes, instead of a model, why there is none: the classifier continues from a served one."""
  reason = ('the classifier continues from a served classifier, which holds its own encoder: '
            'an encoder pretrained now would not be used')
  logging.info('Pretraining skipped: %s (%s)', reason, warm_start_model)
  with training.output_dir(fn_args.serving_model_dir, strategy) as model_dir:
    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(os.path.join(model_dir, outputs.PRETRAINING_SKIPPED_FILE), 'w') as out:
      json.dump({'reason': reason, config.WARM_START_MODEL_KEY: warm_start_model}, out)


def run_fn(fn_args: FnArgs) -> None:
  """Pretrains the encoder with MLM; exports the masked-LM and saves the encoder beside it.

  Args:
    fn_args: TFX Trainer arguments; `custom_config` is a `config.TrainerConfig`. Its
      `training.dtype_policy` is what pretraining computes in (the encoder is saved in float32
      whatever it trained in). With a `warm_start_model` (the served classifier that
      scheduled retraining continues from) pretraining is skipped (see `_skip`).

  With TF_CONFIG naming several workers, each runs this and they train as one.
  """
  strategy = training.distribution_strategy()
  settings = config.TrainerConfig.from_custom_config(fn_args.custom_config)
  schedule = settings.training
  keras.utils.set_random_seed(schedule.seed)
  if settings.warm_start_model:
    _skip(fn_args, settings.warm_start_model, strategy)
    return
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  with strategy.scope():
    encoder = models.build_encoder(*inputs.encoder_shape(tft_output), settings.encoder,
                                   schedule.dropout, training.dtype_policy(schedule.dtype_policy))
    model = models.build_masked_lm(
        encoder, inputs.sequence_length(tft_output, features.MLM_POSITIONS_KEY),
        schedule.tie_word_embeddings)
  train_dataset, eval_dataset = inputs.train_and_eval_datasets(
      fn_args, schedule, tft_output, _MLM_KEYS, _masked_lm_batch)
  training.fit(model, train_dataset, eval_dataset, fn_args, schedule, strategy,
               loss=models.MaskedLMCrossEntropy(),
               metrics=[models.MaskedTokenAccuracy()])
  with training.output_dir(fn_args.serving_model_dir, strategy) as model_dir:
    model.export(model_dir, verbose=False)
    models.in_float32(encoder).save(os.path.join(model_dir, outputs.ENCODER_FILE))
