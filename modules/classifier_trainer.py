"""ClassifierTrainer's run_fn: fine-tunes the pretrained encoder into a sentiment classifier."""

import json
import os
from typing import Any, Callable, Dict, List, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import config, features, inputs, models, outputs, serving, training

# The classifier's parts, in the order of `models.part_logits`' columns.
PART_NAMES = ('encoder', 'ngrams')
# Ridge penalty of the blend's logistic regression: keeps its few weights finite when one part
# separates the eval reviews.
_BLEND_L2 = 1.0


def _part_batches(num_parts: int) -> Callable:
  """Maps transformed features to (the classifier's inputs, the label once per part)."""
  def to_batch(parsed):
    label = tf.cast(parsed[features.LABEL_KEY], tf.float32)[:, None]
    return ({key: value for key, value in parsed.items() if key != features.LABEL_KEY},
            tf.tile(label, [1, num_parts]))
  return to_batch


def _vocabulary(tft_output: tft.TFTransformOutput) -> List[str]:
  """The token of each id: the special tokens, then Transform's vocabulary."""
  learned = tft_output.vocabulary_by_name(features.VOCABULARY_NAME)
  return list(features.SPECIAL_TOKENS) + [token.decode() for token in learned]


def _classifier(fn_args: FnArgs, settings: config.TrainerConfig,
                tft_output: tft.TFTransformOutput, vocabulary: List[str]) -> keras.Model:
  """The classifier to fine-tune: warm-started, or on the pretrained (or a random) encoder."""
  if settings.warm_start_model:
    return _warm_started(settings.warm_start_model, vocabulary,
                         inputs.sequence_length(tft_output, features.TOKEN_IDS_KEY), settings)
  encoder = models.build_encoder(*inputs.encoder_shape(tft_output), settings.encoder,
                                 settings.training.dropout)
  if fn_args.base_model:
    # The pretrained weights in an encoder of fine-tuning's dropout, not pretraining's.
    pretrained = keras.saving.load_model(os.path.join(fn_args.base_model, outputs.ENCODER_FILE))
    encoder.set_weights(pretrained.get_weights())
  return models.build_classifier(encoder, settings.training.head_dropout, settings.ngram_buckets)


def _warm_started(path: str, vocabulary: List[str], sequence_length: int,
                  settings: config.TrainerConfig) -> keras.Model:
  """The classifier saved at `path`, its token embedding re-indexed to `vocabulary`.

  Transform learns a vocabulary on each run's data, so ids move between runs: a token known
  to both keeps its trained embedding, a new token starts from a random one. An n-gram part
  that the saved classifier lacks, or has with another number of buckets, starts from zero
  while the encoder and its head continue (a run after upgrading to or resizing that part).

  Raises:
    ValueError: the saved encoder or head does not fit this run's model.
  """
  previous = keras.saving.load_model(os.path.join(path, outputs.CLASSIFIER_FILE))
  with tf.io.gfile.GFile(os.path.join(path, outputs.VOCABULARY_FILE)) as vocabulary_file:
    previous_ids = {token: i for i, token in enumerate(vocabulary_file.read().splitlines())}
  encoder = models.build_encoder(len(vocabulary), sequence_length, settings.encoder,
                                 settings.training.dropout)
  model = models.build_classifier(encoder, settings.training.head_dropout, settings.ngram_buckets)
  for weight, previous_weight in zip(_deep_weights(model), _deep_weights(previous), strict=True):
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
  if settings.ngram_buckets:
    _warm_start_ngrams(model, previous, path)
  return model


def _deep_weights(model: keras.Model) -> List[keras.Variable]:
  """The weights of the encoder and its head: not the n-gram part's, nor the blend (refitted)."""
  return [weight for weight in model.weights
          if not weight.path.startswith((models.NGRAM_WEIGHTS_LAYER, models.BLEND_LAYER))]


def _warm_start_ngrams(model: keras.Model, previous: keras.Model, path: str) -> None:
  """Continues the saved n-gram weights where they fit; otherwise they stay at zero."""
  ngram_weights = model.get_layer(models.NGRAM_WEIGHTS_LAYER)
  saved = {layer.name: layer for layer in previous.layers}.get(models.NGRAM_WEIGHTS_LAYER)
  if saved is not None and saved.embeddings.shape == ngram_weights.embeddings.shape:
    ngram_weights.set_weights(saved.get_weights())
  else:
    logging.warning('Warm start from %s: its n-gram part does not fit %d buckets, so that part '
                    'starts from zero', path, ngram_weights.input_dim)


def _logistic_regression(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> Tuple[np.ndarray, float]:
  """Weights and bias of an L2-penalized logistic regression of `y` on the columns of `x` (Newton)."""
  x = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
  coefficients = np.zeros(x.shape[1])
  for _ in range(iterations):
    probability = 1 / (1 + np.exp(-x @ coefficients))
    gradient = x.T @ (probability - y) + _BLEND_L2 * coefficients
    hessian = (x.T * probability * (1 - probability)) @ x + _BLEND_L2 * np.eye(x.shape[1])
    step = np.linalg.solve(hessian, gradient)
    coefficients -= step
    if np.abs(step).max() < 1e-9:
      break
  return coefficients[:-1], float(coefficients[-1])


def _fit_blend(model: keras.Model, parts: keras.Model, eval_dataset: tf.data.Dataset,
               eval_steps: int) -> Dict[str, Any]:
  """Sets the blend to the logistic regression of the labels on the part logits over `eval`.

  Stacking (Wolpert 1992): the weights come from reviews neither part trained on. Returns the
  weights and the eval accuracy of each part and of the blend.
  """
  logits, labels = [], []
  for batch_inputs, batch_labels in eval_dataset.take(eval_steps):
    # A plain call: Keras's predict would gather the batch from every worker.
    logits.append(keras.ops.convert_to_numpy(parts(batch_inputs, training=False)))
    labels.append(batch_labels.numpy()[:, 0])
  logits, labels = np.concatenate(logits), np.concatenate(labels)
  weights, bias = _logistic_regression(logits, labels)
  model.get_layer(models.BLEND_LAYER).set_weights([weights[:, None], np.array([bias])])
  return {'weights': dict(zip(PART_NAMES, weights.tolist(), strict=False)), 'bias': bias,
          'eval_reviews': len(labels),
          'eval_accuracy': part_accuracies(logits, labels, weights, bias)}


def part_accuracies(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                    bias: float) -> Dict[str, float]:
  """Accuracy of each part's logit (a column of `logits`) and of the blend `logits @ weights + bias`."""
  accuracy = {name: float(np.mean((logits[:, i] > 0) == labels))
              for i, name in enumerate(PART_NAMES[:logits.shape[1]])}
  accuracy['blend'] = float(np.mean((logits @ weights + bias > 0) == labels))
  return accuracy


def _save_for_warm_start(model: keras.Model, vocabulary: List[str], serving_model_dir: str) -> None:
  """Saves the Keras classifier and its vocabulary beside the serving SavedModel."""
  model.save(os.path.join(serving_model_dir, outputs.CLASSIFIER_FILE))
  with tf.io.gfile.GFile(os.path.join(serving_model_dir, outputs.VOCABULARY_FILE), 'w') as out:
    out.write('\n'.join(vocabulary) + '\n')


def run_fn(fn_args: FnArgs) -> None:
  """Fine-tunes on `train`, keeps the epoch best on `eval`, exports the serving SavedModel.

  Each part of the classifier (encoder, n-grams) learns the labels on its own; the epoch kept is
  the one whose parts have the best mean accuracy on `eval`, whose reviews then fit the blend.

  Args:
    fn_args: TFX Trainer arguments; `base_model` is the PretrainTrainer's model, and
      `custom_config` a `config.TrainerConfig`, whose `warm_start_model` (a classifier to
      continue from) takes precedence over `base_model`.

  With TF_CONFIG naming several workers, each runs this and they train as one.
  """
  strategy = training.distribution_strategy()
  settings = config.TrainerConfig.from_custom_config(fn_args.custom_config)
  keras.utils.set_random_seed(settings.training.seed)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  vocabulary = _vocabulary(tft_output)
  with strategy.scope():
    model = _classifier(fn_args, settings, tft_output, vocabulary)
    parts = models.part_logits(model)
  train_dataset, eval_dataset = inputs.train_and_eval_datasets(
      fn_args, settings.training, tft_output,
      models.classifier_inputs(model) + [features.LABEL_KEY], _part_batches(parts.output.shape[-1]))
  training.fit(parts, train_dataset, eval_dataset, fn_args, settings.training, strategy,
               loss=keras.losses.BinaryCrossentropy(from_logits=True),
               metrics=[keras.metrics.BinaryAccuracy(name='accuracy', threshold=0.0),
                        keras.metrics.AUC(name='auc', from_logits=True)],
               best_by='val_accuracy')
  blend = _fit_blend(model, parts, eval_dataset, fn_args.eval_steps)
  logging.info('Blend fitted on eval: %s', blend)
  with training.output_dir(fn_args.model_run_dir, strategy) as model_run_dir:
    with tf.io.gfile.GFile(os.path.join(model_run_dir, outputs.BLEND_FILE), 'w') as out:
      out.write(json.dumps(blend, indent=2))
  with training.output_dir(fn_args.serving_model_dir, strategy) as model_dir:
    serving.export(model, tft_output, model_dir)
    _save_for_warm_start(model, vocabulary, model_dir)
