"""ClassifierTrainer's run_fn: fine-tunes the pretrained encoder into a sentiment classifier."""

import os

import keras
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import features, inputs, models, serving, training


def _classifier_batch(parsed):
  """Transformed features → (clean token ids, label as a float column)."""
  label = tf.cast(parsed[features.LABEL_KEY], tf.float32)[:, None]
  return {features.TOKEN_IDS_KEY: parsed[features.TOKEN_IDS_KEY]}, label


def _encoder(fn_args: FnArgs, tft_output: tft.TFTransformOutput):
  """The pretrained encoder of `base_model`, or a random one when there is none."""
  if fn_args.base_model:
    return keras.saving.load_model(os.path.join(fn_args.base_model, models.ENCODER_FILE))
  return models.build_encoder(*inputs.encoder_shape(tft_output), fn_args.custom_config)


def run_fn(fn_args: FnArgs) -> None:
  """Fine-tunes on `train`, keeps the epoch best on `eval`, exports the serving SavedModel.

  Args:
    fn_args: TFX Trainer arguments; `base_model` is the PretrainTrainer's model.
      `custom_config` holds `batch_size`, `head_dropout` and the `training.fit` settings (and
      the encoder's size, used only without a base model).
  """
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model = models.build_classifier(
      _encoder(fn_args, tft_output), fn_args.custom_config['head_dropout'])
  train_dataset, eval_dataset = inputs.train_and_eval_datasets(
      fn_args, tft_output, (features.TOKEN_IDS_KEY, features.LABEL_KEY), _classifier_batch)
  training.fit(model, train_dataset, eval_dataset, fn_args,
               loss=keras.losses.BinaryCrossentropy(from_logits=True),
               metrics=[keras.metrics.BinaryAccuracy(name='accuracy', threshold=0.0),
                        keras.metrics.AUC(name='auc', from_logits=True)],
               best_by='val_accuracy')
  serving.export(model, tft_output, fn_args.serving_model_dir)
