"""The exported classifier: Transform graph + Keras model behind two signatures.

The tf.Transform layer is a Keras 2 layer, so it and the Keras 3 model are tracked by a plain
`tf.Module` rather than nested in one Keras model.
"""

import keras
import tensorflow as tf
import tensorflow_transform as tft

from modules import features, models

SERVING_DEFAULT = 'serving_default'  # Serialized raw tf.Examples in: what TFMA feeds.
PREDICT_TEXT = 'predict_text'  # Raw review strings in.
PROBABILITY_KEY = 'probability'
PREDICTED_LABEL_KEY = 'label'
# Reviews scored at a time: bounds the memory of a request, whatever its batch size.
MAX_CHUNK = 256


class ClassifierServer(tf.Module):
  """Raw reviews to positive-class probabilities."""

  def __init__(self, model: keras.Model, tft_output: tft.TFTransformOutput):
    super().__init__()
    self.model = model
    self.transform_layer = tft_output.transform_features_layer()

  def _probability(self, text: tf.Tensor) -> tf.Tensor:
    """Scores `text` in chunks of at most MAX_CHUNK reviews, one chunk at a time.

    Memory then stays bounded whatever the batch size; a batch of at most MAX_CHUNK is one chunk.
    """
    count = tf.size(text)
    chunk = tf.clip_by_value(count, 1, MAX_CHUNK)
    chunks = (count + chunk - 1) // chunk
    padded = tf.concat([text, tf.fill([chunks * chunk - count], '')], axis=0)
    scores = tf.map_fn(self._chunk_probability, tf.reshape(padded, [chunks, chunk]),
                       fn_output_signature=tf.TensorSpec([None], tf.float32),
                       parallel_iterations=1)
    return tf.reshape(scores, [-1])[:count]

  def _chunk_probability(self, text: tf.Tensor) -> tf.Tensor:
    # The schema gives raw `text` the shape [batch, 1].
    transformed = self.transform_layer({features.TEXT_KEY: tf.reshape(text, [-1, 1])})
    logits = self.model({key: transformed[key] for key in models.classifier_inputs(self.model)},
                        training=False)
    return tf.sigmoid(tf.reshape(logits, [-1]))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(self, serialized_examples: tf.Tensor):
    """Serialized tf.Examples with a `text` feature → {'probability': [batch]}."""
    raw = tf.io.parse_example(
        serialized_examples, {features.TEXT_KEY: tf.io.FixedLenFeature([], tf.string)})
    return {PROBABILITY_KEY: self._probability(raw[features.TEXT_KEY])}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='text')])
  def predict_text(self, text: tf.Tensor):
    """Review strings → {'probability': float32 [batch], 'label': int64 [batch]}."""
    probability = self._probability(text)
    return {PROBABILITY_KEY: probability,
            PREDICTED_LABEL_KEY: tf.cast(probability >= 0.5, tf.int64)}


def export(model: keras.Model, tft_output: tft.TFTransformOutput, export_dir: str) -> None:
  """Saves the classifier as a SavedModel with `serving_default` and `predict_text`."""
  server = ClassifierServer(model, tft_output)
  tf.saved_model.save(server, export_dir, signatures={
      SERVING_DEFAULT: server.serve_examples, PREDICT_TEXT: server.predict_text})
