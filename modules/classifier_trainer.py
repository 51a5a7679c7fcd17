"""ClassifierTrainer's run_fn: fine-tunes the pretrained encoder into a sentiment classifier."""

import os
from typing import Any, Dict, List

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import features, inputs, models, serving, training


def _classifier_batch(parsed):
  """Transformed features → (the classifier's inputs, label as a float column)."""
  label = tf.cast(parsed[features.LABEL_KEY], tf.float32)[:, None]
  return {key: value for key, value in parsed.items() if key != features.LABEL_KEY}, label


def _vocabulary(tft_output: tft.TFTransformOutput) -> List[str]:
  """The token of each id: the special tokens, then Transform's vocabulary."""
  learned = tft_output.vocabulary_by_name(features.VOCABULARY_NAME)
  return list(features.SPECIAL_TOKENS) + [token.decode() for token in learned]


def _classifier(fn_args: FnArgs, tft_output: tft.TFTransformOutput,
                vocabulary: List[str]) -> keras.Model:
  """The classifier to fine-tune: warm-started, or on the pretrained (or a random) encoder."""
  config = fn_args.custom_config
  if config.get(features.WARM_START_MODEL_KEY):
    return _warm_started(config[features.WARM_START_MODEL_KEY], vocabulary,
                         inputs.sequence_length(tft_output, features.TOKEN_IDS_KEY), config)
  if fn_args.base_model:
    encoder = keras.saving.load_model(os.path.join(fn_args.base_model, models.ENCODER_FILE))
  else:
    encoder = models.build_encoder(*inputs.encoder_shape(tft_output), config)
  return models.build_classifier(encoder, config['head_dropout'], config['ngram_buckets'])


def _warm_started(path: str, vocabulary: List[str], sequence_length: int,
                  config: Dict[str, Any]) -> keras.Model:
  """The classifier saved at `path`, its token embedding re-indexed to `vocabulary`.

  Transform learns a vocabulary on each run's data, so ids move between runs: a token known
  to both keeps its trained embedding, a new token starts from a random one. An n-gram part
  that the saved classifier lacks, or has with another number of buckets, starts from zero
  while the encoder and its head continue (a run after upgrading to or resizing that part).

  Raises:
    ValueError: the saved encoder or head does not fit this run's model.
  """
  previous = keras.saving.load_model(os.path.join(path, models.CLASSIFIER_FILE))
  with tf.io.gfile.GFile(os.path.join(path, models.VOCABULARY_FILE)) as vocabulary_file:
    previous_ids = {token: i for i, token in enumerate(vocabulary_file.read().splitlines())}
  encoder = models.build_encoder(len(vocabulary), sequence_length, config)
  model = models.build_classifier(encoder, config['head_dropout'], config['ngram_buckets'])
  for weight, previous_weight in zip(_deep_weights(model), _deep_weights(previous)):
    is_token_embedding = weight is encoder.token_embedding.embeddings
    # The token embedding has a row per vocabulary entry; all other shapes must match.
    first_fixed_axis = 1 if is_token_embedding else 0
    if weight.shape[first_fixed_axis:] != previous_weight.shape[first_fixed_axis:]:
      raise ValueError(f'Cannot warm-start from {path}: {weight.path} is {previous_weight.shape} '
                       f'there and {weight.shape} here; the model size or sequence length changed')
    if is_token_embedding:
      kept = [(i, previous_ids[token]) for i, token in enumerate(vocabulary)
              if token in previous_ids]
      values = keras.ops.convert_to_numpy(weight)
      previous_values = keras.ops.convert_to_numpy(previous_weight)
      values[[i for i, _ in kept]] = previous_values[[j for _, j in kept]]
      weight.assign(values)
      logging.info('Warm start from %s: %d of %d tokens keep their embedding', path, len(kept),
                   len(vocabulary))
    else:
      weight.assign(previous_weight)
  if config['ngram_buckets']:
    _warm_start_ngrams(model, previous, path)
  return model


def _deep_weights(model: keras.Model) -> List[keras.Variable]:
  """The weights of the encoder and its head: all but the n-gram part's."""
  return [weight for weight in model.weights
          if not weight.path.startswith(models.NGRAM_WEIGHTS_LAYER)]


def _warm_start_ngrams(model: keras.Model, previous: keras.Model, path: str) -> None:
  """Continues the saved n-gram weights where they fit; otherwise they stay at zero."""
  ngram_weights = model.get_layer(models.NGRAM_WEIGHTS_LAYER)
  saved = {layer.name: layer for layer in previous.layers}.get(models.NGRAM_WEIGHTS_LAYER)
  if saved is not None and saved.embeddings.shape == ngram_weights.embeddings.shape:
    ngram_weights.set_weights(saved.get_weights())
  else:
    logging.warning('Warm start from %s: its n-gram part does not fit %d buckets, so that part '
                    'starts from zero', path, ngram_weights.input_dim)


def _save_for_warm_start(model: keras.Model, vocabulary: List[str], serving_model_dir: str) -> None:
  """Saves the Keras classifier and its vocabulary beside the serving SavedModel."""
  model.save(os.path.join(serving_model_dir, models.CLASSIFIER_FILE))
  with tf.io.gfile.GFile(os.path.join(serving_model_dir, models.VOCABULARY_FILE), 'w') as out:
    out.write('\n'.join(vocabulary) + '\n')


def run_fn(fn_args: FnArgs) -> None:
  """Fine-tunes on `train`, keeps the epoch best on `eval`, exports the serving SavedModel.

  Args:
    fn_args: TFX Trainer arguments; `base_model` is the PretrainTrainer's model.
      `custom_config` holds `batch_size`, `head_dropout`, `ngram_buckets` (Transform's),
      the `training.fit` settings, the encoder's size (used without a base model) and
      `warm_start_model`: a classifier to continue from, which takes precedence over
      `base_model`.

  With TF_CONFIG naming several workers, each runs this and they train as one.
  """
  strategy = training.distribution_strategy()
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  vocabulary = _vocabulary(tft_output)
  with strategy.scope():
    model = _classifier(fn_args, tft_output, vocabulary)
  train_dataset, eval_dataset = inputs.train_and_eval_datasets(
      fn_args, tft_output, models.classifier_inputs(model) + [features.LABEL_KEY],
      _classifier_batch)
  training.fit(model, train_dataset, eval_dataset, fn_args, strategy,
               loss=keras.losses.BinaryCrossentropy(from_logits=True),
               metrics=[keras.metrics.BinaryAccuracy(name='accuracy', threshold=0.0),
                        keras.metrics.AUC(name='auc', from_logits=True)],
               best_by='val_accuracy')
  with training.output_dir(fn_args.serving_model_dir, strategy) as model_dir:
    serving.export(model, tft_output, model_dir)
    _save_for_warm_start(model, vocabulary, model_dir)
