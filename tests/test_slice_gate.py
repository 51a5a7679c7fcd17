"""The Evaluator's slice gate on real TFMA runs: better overall, worse on one rating, refused."""

import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.atomic_pusher import component as atomic_pusher
from components.evaluator import component as evaluator
from modules import features
from pipeline import report
from pipeline.pipeline import SLICE_FEATURES, eval_config

RATINGS = (1, 2, 3, 4, 7, 8, 9, 10)
REVIEWS_PER_RATING = 30


class _ByRating(tf.Module):
  """A model that reads a review's rating: right on every rating but the `wrong` ones."""

  def __init__(self, wrong):
    super().__init__()
    self.wrong = tf.constant(wrong or [0], tf.int64)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve(self, examples):
    rating = tf.io.parse_example(
        examples, {features.RATING_KEY: tf.io.FixedLenFeature([], tf.int64)})[features.RATING_KEY]
    positive = rating >= 7
    flipped = tf.reduce_any(rating[:, None] == self.wrong[None, :], axis=1)
    return {'probability': tf.where(positive != flipped, 0.9, 0.1)}


def _model(tmp_path, name, wrong):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / name)
  module = _ByRating(wrong)
  tf.saved_model.save(module, os.path.join(model.uri, 'Format-Serving'),
                      signatures={'serving_default': module.serve})
  return model


def _examples(tmp_path):
  """An Examples artifact whose `test` split holds REVIEWS_PER_RATING reviews of each rating."""
  examples = standard_artifacts.Examples()
  examples.uri, examples.split_names = str(tmp_path / 'examples'), '["test"]'
  os.makedirs(os.path.join(examples.uri, 'Split-test'))
  with tf.io.TFRecordWriter(os.path.join(examples.uri, 'Split-test', 'data.gz'), 'GZIP') as out:
    for rating in RATINGS:
      for i in range(REVIEWS_PER_RATING):
        out.write(tf.train.Example(features=tf.train.Features(feature={
            features.TEXT_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'a review'])),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(rating >= 7)])),
            features.RATING_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[rating])),
            features.LENGTH_BUCKET_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'0-99'])),
            features.REVIEW_ID_KEY: tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[f'test/{rating}/{i}'.encode()])),
        })).SerializeToString())
  return examples


def _evaluate(tmp_path, candidate, baseline, gate):
  evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
  evaluation.uri, blessing.uri = str(tmp_path / 'evaluation'), str(tmp_path / 'blessing')
  evaluator.Executor().Do(
      {'examples': [_examples(tmp_path)], 'model': [candidate], 'baseline_model': [baseline]},
      {'evaluation': [evaluation], 'blessing': [blessing]},
      {'eval_config': proto_utils.proto_to_json(eval_config(min_accuracy=0.5, max_accuracy_drop=0.05)),
       'example_splits': '["test"]', 'slice_gate': json.dumps(gate)})
  return evaluation, blessing


def _push(tmp_path, model, blessing):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed' / os.path.basename(model.uri))
  destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
      base_directory=str(tmp_path / 'serving')))
  atomic_pusher.Executor().Do({'model': [model], 'model_blessing': [blessing]},
                              {'pushed_model': [pushed]},
                              {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


def test_a_candidate_better_overall_but_worse_on_one_rating_is_refused_and_not_served(tmp_path):
  served = _model(tmp_path, 'served', wrong=[1, 10])  # 75% overall, 100% on rating 4.
  served_blessing = standard_artifacts.ModelBlessing()
  served_blessing.uri = str(tmp_path / 'served-blessing')
  served_blessing.set_int_custom_property('blessed', 1)
  first_push = _push(tmp_path, served, served_blessing)
  candidate = _model(tmp_path, 'candidate', wrong=[4])  # 87.5% overall, 0% on rating 4.

  evaluation, blessing = _evaluate(tmp_path, candidate, served, {
      'features': list(SLICE_FEATURES), 'max_accuracy_drop': 0.1,
      'min_examples': REVIEWS_PER_RATING})

  assert tfma.load_validation_result(evaluation.uri).validation_ok  # TFMA's gates pass it.
  assert blessing.get_int_custom_property('blessed') == 0
  assert os.listdir(blessing.uri) == ['NOT_BLESSED']
  assert json.loads(blessing.get_string_custom_property('slice_regressions')) == [
      f"rating = 4: accuracy 0.0000 against the served model's 1.0000 ({REVIEWS_PER_RATING} reviews)"]
  with open(os.path.join(evaluation.uri, evaluator.SLICE_GATE_FILE)) as gate_file:
    slices = {item['slice']: item for item in json.load(gate_file)['slices']}
  assert set(slices) == {f'rating = {rating}' for rating in RATINGS} | {'length_bucket = 0-99'}
  assert slices['rating = 1']['candidate'] > slices['rating = 1']['baseline']

  assert _push(tmp_path, candidate, blessing).get_int_custom_property('pushed') == 0
  assert atomic_pusher.newest_version(str(tmp_path / 'serving')) == \
      first_push.get_string_custom_property('pushed_version')


def test_a_slice_smaller_than_the_gates_minimum_is_reported_not_gated(tmp_path):
  served = _model(tmp_path, 'served', wrong=[1, 10])
  candidate = _model(tmp_path, 'candidate', wrong=[4])
  _, blessing = _evaluate(tmp_path, candidate, served, {
      'features': list(SLICE_FEATURES), 'max_accuracy_drop': 0.1,
      'min_examples': REVIEWS_PER_RATING + 1})
  assert blessing.get_int_custom_property('blessed') == 1
  assert json.loads(blessing.get_string_custom_property('slice_regressions')) == []


def test_the_report_names_each_gate_a_refused_candidate_failed(tmp_path):
  served = _model(tmp_path, 'served', wrong=[])  # 100%.
  candidate = _model(tmp_path, 'candidate', wrong=[1, 2, 3, 4, 7])  # 37.5%; 0% on five ratings.
  evaluation, blessing = _evaluate(tmp_path, candidate, served, {
      'features': list(SLICE_FEATURES), 'max_accuracy_drop': 0.1,
      'min_examples': REVIEWS_PER_RATING})

  assert blessing.get_int_custom_property('blessed') == 0
  failures = report.gate_failures(evaluation.uri, json.loads(
      blessing.get_string_custom_property('slice_regressions')))
  assert failures[:2] == [
      "binary_accuracy 0.3750, outside the gate's lower bound 0.5",
      'binary_accuracy changed by -0.6250 against the served model; the gate allows -0.05']
  assert failures[2:] == [
      "slice length_bucket = 0-99: accuracy 0.3750 against the served model's 1.0000 (240 reviews)"
  ] + [f"slice rating = {rating}: accuracy 0.0000 against the served model's 1.0000 "
       f'({REVIEWS_PER_RATING} reviews)' for rating in (1, 2, 3, 4, 7)]
