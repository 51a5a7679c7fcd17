"""AtomicPusher's executor on real artifacts: a version appears whole, leftovers of a killed push go."""

import os
import time

import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.atomic_pusher import STAGING_DIR
from components.atomic_pusher.component import Executor


class _Doubler(tf.Module):

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
  def __call__(self, x):
    return 2.0 * x


def _push(tmp_path, blessed, model_name='model'):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / model_name)
  if not os.path.exists(model.uri):
    tf.saved_model.save(_Doubler(), os.path.join(model.uri, 'Format-Serving'))
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed' / f'{model_name}-{time.time_ns()}')
  destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
      base_directory=str(tmp_path / 'serving')))
  Executor().Do({'model': [model], 'model_blessing': [blessing]}, {'pushed_model': [pushed]},
                {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


def test_a_push_replaces_the_leftovers_of_a_killed_one_and_appears_whole(tmp_path):
  half_written = tmp_path / 'serving' / STAGING_DIR / '1700000000' / 'variables'
  half_written.mkdir(parents=True)  # What a push killed midway leaves: no saved_model.pb.
  pushed = _push(tmp_path, blessed=True)
  versions = [name for name in os.listdir(tmp_path / 'serving') if not name.startswith('.')]
  assert len(versions) == 1 and versions[0].isdigit()
  assert not (tmp_path / 'serving' / STAGING_DIR).exists()
  destination = pushed.get_string_custom_property('pushed_destination')
  assert destination == str(tmp_path / 'serving' / versions[0])
  assert pushed.get_int_custom_property('pushed') == 1
  loaded = tf.saved_model.load(destination)
  assert loaded(tf.constant([1.5])).numpy().tolist() == [3.0]


def test_an_unblessed_model_is_not_pushed(tmp_path):
  pushed = _push(tmp_path, blessed=False)
  assert pushed.get_int_custom_property('pushed') == 0
  serving = tmp_path / 'serving'
  assert not serving.exists() or not os.listdir(serving)


def test_the_same_model_blessed_again_is_not_pushed_again(tmp_path):
  first = _push(tmp_path, blessed=True)
  again = _push(tmp_path, blessed=True)  # A rerun on unchanged data blesses the same model.
  time.sleep(1.1)  # Versions are Unix seconds: a new push would get a new number.
  other = _push(tmp_path, blessed=True, model_name='retrained')
  versions = sorted(name for name in os.listdir(tmp_path / 'serving') if name.isdigit())
  assert len(versions) == 2
  assert again.get_string_custom_property('pushed_destination') == \
      first.get_string_custom_property('pushed_destination')
  assert other.get_string_custom_property('pushed_destination').endswith(versions[-1])
