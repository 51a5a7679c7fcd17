"""The exported classifier: Transform graph + Keras model behind two signatures.

The tf.Transform layer is a Keras 2 layer, so it and the Keras 3 model are tracked by a plain
`tf.Module` rather than nested in one Keras model.

Contract of both signatures, per review of a batch:
  * `probability`: float32, the probability that the review is positive;
  * `is_review`: bool, False for text with no word once standardized as Transform standardizes
    reviews (empty, whitespace, `<br />` or punctuation only). Such text gets probability 0.5,
    no evidence either way, and `predict_text` gives it label -1 (`features.UNLABELED`); the
    rest of its batch is scored as usual.
  * `label` (`predict_text` only): int64, 1 when `probability` >= 0.5, else 0.
"""

import os
from typing import Iterator, Sequence

import keras
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from modules import features, models, preprocessing

SERVING_DEFAULT = 'serving_default'  # Serialized raw tf.Examples in: what TFMA feeds.
PREDICT_TEXT = 'predict_text'  # Raw review strings in.
# The signatures' input names.
EXAMPLES_INPUT = 'examples'
TEXT_INPUT = 'text'
PROBABILITY_KEY = 'probability'
PREDICTED_LABEL_KEY = 'label'
IS_REVIEW_KEY = 'is_review'
# What text that holds no word gets: no evidence either way.
NO_REVIEW_PROBABILITY = 0.5
# Reviews scored at a time: bounds the memory of a request, whatever its batch size.
MAX_CHUNK = 256
# TF Serving replays the requests in this file of a version before it serves the version, so
# the first real request does not pay for building the graph.
WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')
# Real-looking reviews for the warmup requests.
WARMUP_REVIEWS = (
    'A moving, beautifully acted film. The last half hour had me in tears.<br /><br />10/10.',
    'Two hours I will never get back: a dull plot, wooden acting and a twist you can see coming.',
    'Not great, not awful. The lead is charming but the script runs out of ideas halfway.',
)


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

  def _outputs(self, text: tf.Tensor):
    """{'probability', 'is_review'} of each review (see the module's contract)."""
    is_review = tf.strings.length(tf.strings.strip(preprocessing.standardize(text))) > 0
    probability = tf.where(is_review, self._probability(text), NO_REVIEW_PROBABILITY)
    return {PROBABILITY_KEY: probability, IS_REVIEW_KEY: is_review}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
  def serve_examples(self, serialized_examples: tf.Tensor):
    """Serialized tf.Examples with a `text` feature → {'probability', 'is_review'}: [batch]."""
    raw = tf.io.parse_example(
        serialized_examples, {features.TEXT_KEY: tf.io.FixedLenFeature([], tf.string)})
    return self._outputs(raw[features.TEXT_KEY])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
  def predict_text(self, text: tf.Tensor):
    """Review strings → {'probability', 'label', 'is_review'}: [batch] each."""
    outputs = self._outputs(text)
    label = tf.cast(outputs[PROBABILITY_KEY] >= 0.5, tf.int64)
    return {**outputs,
            PREDICTED_LABEL_KEY: tf.where(outputs[IS_REVIEW_KEY], label,
                                                  tf.constant(features.UNLABELED, tf.int64))}


def example(text: str) -> bytes:
  """A serialized tf.Example with the raw `text` feature, as `serving_default` takes it."""
  return tf.train.Example(features=tf.train.Features(feature={
      features.TEXT_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
  })).SerializeToString()


def warmup_requests(reviews: Sequence[str] = WARMUP_REVIEWS) -> Iterator[prediction_log_pb2.PredictionLog]:
  """TF Serving warmup records: each signature asked about one review, then about all of them."""
  for batch in (reviews[:1], reviews):
    for signature, name, values in (
        (PREDICT_TEXT, TEXT_INPUT, [review.encode() for review in batch]),
        (SERVING_DEFAULT, EXAMPLES_INPUT, [example(review) for review in batch])):
      request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature))
      request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
      yield prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))


def export(model: keras.Model, tft_output: tft.TFTransformOutput, export_dir: str) -> None:
  """Saves the classifier as a SavedModel with `serving_default` and `predict_text`, and TF
  Serving's warmup records for both in `WARMUP_FILE`."""
  server = ClassifierServer(model, tft_output)
  tf.saved_model.save(server, export_dir, signatures={
      SERVING_DEFAULT: server.serve_examples, PREDICT_TEXT: server.predict_text})
  warmup_path = os.path.join(export_dir, WARMUP_FILE)
  tf.io.gfile.makedirs(os.path.dirname(warmup_path))
  with tf.io.TFRecordWriter(warmup_path) as writer:
    for log in warmup_requests():
      writer.write(log.SerializeToString())
