"""AtomicPusher's executor on real artifacts: a version appears whole, leftovers of a killed push go."""

import os
import shutil
import time

import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.atomic_pusher import STAGING_DIR, component
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


class _FileByFileRenames:
  """fileio's rename as an object store does it: a folder moves file by file, in name order.

  After each file it checks what a model server polling the serving folder could see: a
  version that holds `saved_model.pb` (loadable) must hold every file of the model.
  """

  def __init__(self, rename, serving, model_files):
    self._rename, self._serving, self._model_files = rename, serving, model_files
    self.half_versions_seen = 0

  def __call__(self, source, target, overwrite=False):
    if not os.path.isdir(source):
      self._rename(source, target, overwrite)
    else:
      for folder, _, names in sorted(os.walk(source)):
        for name in sorted(names):
          path = os.path.join(folder, name)
          os.makedirs(os.path.dirname(os.path.join(target, os.path.relpath(path, source))),
                      exist_ok=True)
          self._rename(path, os.path.join(target, os.path.relpath(path, source)), overwrite)
          self._look()
      shutil.rmtree(source)
    self._look()

  def _look(self):
    for version in (name for name in os.listdir(self._serving) if name.isdigit()):
      root = os.path.join(self._serving, version)
      present = {os.path.relpath(os.path.join(folder, name), root)
                 for folder, _, names in os.walk(root) for name in names}
      if 'saved_model.pb' in present and present != self._model_files:
        self.half_versions_seen += 1


def test_on_an_object_store_a_version_is_never_loadable_before_it_is_whole(tmp_path, monkeypatch):
  model = tmp_path / 'model' / 'Format-Serving'
  tf.saved_model.save(_Doubler(), str(model))
  model_files = {os.path.relpath(os.path.join(folder, name), model)
                 for folder, _, names in os.walk(model) for name in names}
  assert 'saved_model.pb' in model_files and any(f.startswith('variables/') for f in model_files)
  serving = tmp_path / 'serving'
  renames = _FileByFileRenames(fileio.rename, str(serving), model_files)
  monkeypatch.setattr(fileio, 'rename', renames)

  # What a folder rename does on an object store: the check sees a half version.
  shutil.copytree(model, tmp_path / 'staged')
  serving.mkdir()
  fileio.rename(str(tmp_path / 'staged'), str(serving / '1'))
  assert renames.half_versions_seen > 0
  shutil.rmtree(serving)

  renames.half_versions_seen = 0
  monkeypatch.setattr(component, '_is_object_store', lambda path: True)
  pushed = _push(tmp_path, blessed=True)
  assert pushed.get_int_custom_property('pushed') == 1
  assert renames.half_versions_seen == 0
  loaded = tf.saved_model.load(pushed.get_string_custom_property('pushed_destination'))
  assert loaded(tf.constant([1.5])).numpy().tolist() == [3.0]
