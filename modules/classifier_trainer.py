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
  vocabulary_size = (tft_output.vocabulary_size_by_name(features.VOCABULARY_NAME)
                     + features.NUM_SPECIAL_TOKENS)
  return models.build_encoder(
      vocabulary_size, inputs.sequence_length(tft_output, features.TOKEN_IDS_KEY),
      fn_args.custom_config)


def run_fn(fn_args: FnArgs) -> None:
  """Fine-tunes on `train`, keeps the epoch best on `eval`, exports the serving SavedModel.

  Args:
    fn_args: TFX Trainer arguments; `base_model` is the PretrainTrainer's model.
      `custom_config` holds `batch_size`, `head_dropout` and the `training.fit` settings (and
      the encoder's size, used only without a base model).
  """
  config = fn_args.custom_config
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model = models.build_classifier(_encoder(fn_args, tft_output), config['head_dropout'])
  keys = (features.TOKEN_IDS_KEY, features.LABEL_KEY)
  train_dataset, eval_dataset = (
      inputs.transformed_dataset(files, tft_output, keys, config['batch_size'], shuffle)
      .map(_classifier_batch)
      for files, shuffle in ((fn_args.train_files, True), (fn_args.eval_files, False)))
  training.fit(model, train_dataset, eval_dataset, fn_args,
               loss=keras.losses.BinaryCrossentropy(from_logits=True),
               metrics=[keras.metrics.BinaryAccuracy(name='accuracy', threshold=0.0),
                        keras.metrics.AUC(name='auc', from_logits=True)],
               best_by='val_accuracy')
  serving.export(model, tft_output, fn_args.serving_model_dir)
