"""Using what a run produced: the pushed classifier on raw text, the pretrained encoder on `[mask]`.

Both load SavedModels the Trainers exported; `fill_mask` also builds the encoder's input the way
Transform does, so it lives beside the code that defines that input.
"""

import os
import re
from typing import List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features, inputs, models, preprocessing

MASK_WORD = '[mask]'


class InferenceError(ValueError):
  """What was asked cannot be computed (no such model, no `[mask]`, ...); the message says why."""


def predict(model_path: str, texts: List[str]) -> List[Tuple[float, int]]:
  """(probability of a positive review, label) for each text, from a pushed SavedModel."""
  if not os.path.isdir(model_path):
    raise InferenceError(f'{model_path} is not a SavedModel folder')
  outputs = tf.saved_model.load(model_path).signatures['predict_text'](text=tf.constant(texts))
  return list(zip(outputs['probability'].numpy().tolist(), outputs['label'].numpy().tolist(),
                  strict=True))


def fill_mask(sentence: str, pretrained_uri: str, transform_uri: str,
              top_k: int = 5) -> List[Tuple[str, float]]:
  """The `top_k` tokens, with probabilities, the pretrained masked-LM puts at `[mask]`.

  Args:
    sentence: Raw text with one `[mask]`; standardized as the Transform standardizes reviews.
    pretrained_uri: The PretrainTrainer's Model artifact.
    transform_uri: The Transform graph the encoder was trained on (its vocabulary).
    top_k: How many tokens to return.
  """
  parts = re.split(re.escape(MASK_WORD), sentence, flags=re.IGNORECASE)
  if len(parts) != 2:
    raise InferenceError(f'the sentence needs exactly one {MASK_WORD}: {sentence!r}')
  tft_output = tft.TFTransformOutput(transform_uri)
  vocabulary = [token.decode() for token in tft_output.vocabulary_by_name(features.VOCABULARY_NAME)]
  ids_by_word = {word: i + features.NUM_SPECIAL_TOKENS for i, word in enumerate(vocabulary)}
  before, after = ([ids_by_word.get(word, features.UNK_ID) for word in text.decode().split()]
                   for text in preprocessing.standardize(tf.constant(parts)).numpy())
  ids = [features.CLS_ID] + before + [features.MASK_ID] + after
  sequence_length = inputs.sequence_length(tft_output, features.TOKEN_IDS_KEY)
  ids = ids[:sequence_length - 1] + [features.SEP_ID]
  if features.MASK_ID not in ids:
    raise InferenceError(f'{MASK_WORD} is past the model\'s {sequence_length} tokens')
  position = ids.index(features.MASK_ID)
  ids += [features.PAD_ID] * (sequence_length - len(ids))
  positions = [position] * features.max_predictions(sequence_length)
  model = tf.saved_model.load(os.path.join(pretrained_uri, 'Format-Serving'))
  logits = model.serve({features.TOKEN_IDS_KEY: tf.constant([ids], tf.int64),
                        models.MASK_POSITIONS_INPUT: tf.constant([positions], tf.int64)})
  probabilities = tf.nn.softmax(logits[0, 0]).numpy()
  names = list(features.SPECIAL_TOKENS) + vocabulary
  return [(names[i], float(probabilities[i])) for i in np.argsort(-probabilities)[:top_k]]
