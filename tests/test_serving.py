"""The exported classifier on a small real model: text that is not a review, TF Serving warmup."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_serving.apis import prediction_log_pb2

from modules import config, inputs, models, serving
from pipeline import configs

ENCODER = config.EncoderConfig(num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
NOT_REVIEWS = ['', '   \n\t', '<br /><br />', '!!! ...']
REVIEWS = ['superb wonderful film', 'awful boring waste']


@pytest.fixture(scope='module')
def exported(transformed, tmp_path_factory):
  """(folder, loaded SavedModel) of a classifier exported as the ClassifierTrainer exports it."""
  _, transform_dir = transformed
  tft_output = tft.TFTransformOutput(transform_dir)
  encoder = models.build_encoder(*inputs.encoder_shape(tft_output), ENCODER, dropout=0.0)
  model = models.build_classifier(encoder, 0.0, configs.PRESETS['smoke'].ngram_buckets)
  export_dir = str(tmp_path_factory.mktemp('serving') / 'model')
  serving.export(model, tft_output, export_dir)
  return export_dir, tf.saved_model.load(export_dir)


def test_text_without_words_gets_a_defined_answer_and_the_batch_is_scored(exported):
  _, model = exported
  batch = [REVIEWS[0], *NOT_REVIEWS, REVIEWS[1]]
  outputs = {key: value.numpy() for key, value in
             model.signatures[serving.PREDICT_TEXT](text=tf.constant(batch)).items()}
  assert outputs['is_review'].tolist() == [True] + [False] * len(NOT_REVIEWS) + [True]
  assert outputs['probability'][1:-1].tolist() == [0.5] * len(NOT_REVIEWS)
  assert outputs['label'][1:-1].tolist() == [-1] * len(NOT_REVIEWS)
  alone = model.signatures[serving.PREDICT_TEXT](text=tf.constant(REVIEWS))
  np.testing.assert_allclose(outputs['probability'][[0, -1]], alone['probability'].numpy(), rtol=1e-6)
  assert set(outputs['label'][[0, -1]]) <= {0, 1}

  examples = model.signatures[serving.SERVING_DEFAULT](
      examples=tf.constant([serving.example(text) for text in batch]))
  np.testing.assert_allclose(examples['probability'].numpy(), outputs['probability'], rtol=1e-6)
  assert examples['is_review'].numpy().tolist() == outputs['is_review'].tolist()


def test_the_warmup_records_are_tf_serving_requests_the_model_answers(exported):
  export_dir, model = exported
  records = list(tf.data.TFRecordDataset(f'{export_dir}/{serving.WARMUP_FILE}').as_numpy_iterator())
  asked = set()
  for record in records:
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    signature = model.signatures[request.model_spec.signature_name]
    arguments = {name: tf.constant(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
    outputs = signature(**arguments)
    batch = len(next(iter(arguments.values())))
    assert outputs['probability'].shape == (batch,)
    assert outputs['is_review'].numpy().all()  # Real-looking reviews.
    asked.add((request.model_spec.signature_name, batch))
  assert asked == {(name, batch) for name in (serving.PREDICT_TEXT, serving.SERVING_DEFAULT)
                   for batch in (1, len(serving.WARMUP_REVIEWS))}
