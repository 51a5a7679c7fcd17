"""AtomicPusher: TFX's filesystem Pusher, made safe against a push killed midway.

The stock Pusher copies the SavedModel straight into `BASE/VERSION/`, so a push killed midway
leaves a half-written version there. This one copies into `BASE/.staging/VERSION/` (a model
server loads only numeric version folders) and renames it into place when the copy is complete;
a staging folder left by a killed push is removed by the next push.
"""

import os

from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

STAGING_DIR = '.staging'
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
    destination.filesystem.base_directory = staging
    super().Do(input_dict, output_dict,
               {**exec_properties, _DESTINATION_KEY: proto_utils.proto_to_json(destination)})
    pushed = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if pushed.get_int_custom_property('pushed'):
      version = pushed.get_string_custom_property('pushed_version')
      final = os.path.join(base_directory, version)
      fileio.rename(os.path.join(staging, version), final)
      fileio.rmtree(staging)
      pushed.set_string_custom_property('pushed_destination', final)
      logging.info('Model version %s is in place at %s.', version, final)


class AtomicPusher(tfx.components.Pusher):
  """Pushes a blessed model as a new version folder that appears whole or not at all."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
