"""AtomicPusher: TFX's filesystem Pusher, made safe against a push killed midway.

The stock Pusher copies the SavedModel straight into `BASE/VERSION/`, so a push killed midway
leaves a half-written version there. This one copies into `BASE/.staging/VERSION/` (a model
server loads only numeric version folders) and moves it into place when the copy is complete
(`publish`); a staging folder left by a killed push is removed by the next push. A model that
is already the newest pushed version (a rerun on unchanged data) is not pushed again.
"""

import json
import os
import re
from typing import Dict, List, Optional

from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

STAGING_DIR = '.staging'
_SAVED_MODEL_FILE = 'saved_model.pb'
# In the serving directory: the model each version was pushed from, oldest first.
PUSH_LOG = '.pushed_models.json'
_DESTINATION_KEY = standard_component_specs.PUSH_DESTINATION_KEY


class Executor(pusher_executor.Executor):
  """Pushes into the staging folder, then renames the finished version into place."""

  def Do(self, input_dict, output_dict, exec_properties):
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[_DESTINATION_KEY], destination)
    base_directory = destination.filesystem.base_directory
    staging = os.path.join(base_directory, STAGING_DIR)
    if fileio.exists(staging):
      logging.warning('Removing %s, left by a push that did not finish.', staging)
      fileio.rmtree(staging)
    pushed = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    model_path = self.GetModelPath(input_dict)
    log = read_push_log(base_directory)
    if log and log[-1]['model'] == model_path and self.CheckBlessing(input_dict):
      version = log[-1]['version']
      logging.info('%s is already the newest version, %s: not pushed again.', model_path, version)
      self._MarkPushed(pushed, os.path.join(base_directory, version), version)
      return
    destination.filesystem.base_directory = staging
    super().Do(input_dict, output_dict,
               {**exec_properties, _DESTINATION_KEY: proto_utils.proto_to_json(destination)})
    if pushed.get_int_custom_property('pushed'):
      version = pushed.get_string_custom_property('pushed_version')
      final = os.path.join(base_directory, version)
      publish(os.path.join(staging, version), final)
      fileio.rmtree(staging)
      pushed.set_string_custom_property('pushed_destination', final)
      _write_log(base_directory, log + [{'version': version, 'model': model_path}])
      logging.info('Model version %s is in place at %s.', version, final)


def publish(staged: str, final: str) -> None:
  """Moves the finished version `staged` to `final` so a model server never loads half of it.

  On a local file system one rename of the folder does it. An object store (gs://, s3://)
  renames a folder object by object, in name order, which would put `saved_model.pb` in place
  before `variables/`: a server polling the folder could load a SavedModel without its
  weights. There every other file moves first, and `saved_model.pb`, the file without which the
  folder is not a SavedModel to load (TF Serving retries such a version), moves last.
  """
  if not _is_object_store(final):
    fileio.rename(staged, final)
    return
  staged = staged.rstrip('/')
  files = sorted(os.path.join(folder, name)[len(staged) + 1:]
                 for folder, _, names in fileio.walk(staged) for name in names)
  for relative in sorted(files, key=lambda path: path == _SAVED_MODEL_FILE):
    fileio.makedirs(os.path.dirname(os.path.join(final, relative)))
    fileio.rename(os.path.join(staged, relative), os.path.join(final, relative))


def _is_object_store(path: str) -> bool:
  """Whether `path` is on a file system that renames a folder file by file (a URL scheme)."""
  return bool(re.match(r'^[a-z][a-z0-9+.-]*://', path))


def read_push_log(base_directory: str) -> List[Dict[str, str]]:
  """The versions pushed to `base_directory`, oldest first: {'version', 'model'} each.

  `model` is the serving folder of the Model artifact that the version was copied from.
  """
  path = os.path.join(base_directory, PUSH_LOG)
  if not fileio.exists(path):
    return []
  with fileio.open(path) as log_file:
    return json.load(log_file)


def newest_version(base_directory: str) -> Optional[str]:
  """The name of the highest numeric version folder under `base_directory` (the one a model
  server serves), or None when nothing was pushed there."""
  if not fileio.isdir(base_directory):
    return None
  versions = [name.rstrip('/') for name in fileio.listdir(base_directory)]
  return max((name for name in versions if name.isdigit()), key=int, default=None)


def _write_log(base_directory: str, log: List[Dict[str, str]]) -> None:
  """Replaces the push log in one rename, so a reader never sees half of it."""
  path = os.path.join(base_directory, PUSH_LOG)
  with fileio.open(path + '.tmp', 'w') as log_file:
    json.dump(log, log_file, indent=1)
  fileio.rename(path + '.tmp', path, overwrite=True)


class AtomicPusher(tfx.components.Pusher):
  """Pushes a blessed model as a new version folder that appears whole or not at all."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
