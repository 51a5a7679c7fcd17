"""LatestPushedModel: the model that a model server serves now, as a Model artifact.

The Pusher's destination records every model the pipeline blessed, by construction: each is a
numeric version folder, and a model server serves the highest one. This component copies that
version into its output, so that the Evaluator compares a candidate against it and a Trainer
continues from it. It reads only files, not ML Metadata, so it behaves the same under every
orchestrator (TFX's resolvers compile, for Kubeflow, into ML Metadata queries that only Vertex AI
Pipelines runs).

Contract:
  * Its output depends on the destination, which its inputs do not describe: orchestrators must
    run it on every pipeline run and never serve it from cache (`pipeline.ALWAYS_RUN`).
  * Before the first push the artifact is empty, and `has_model` says so; consumers treat it as
    no model at all.
  * The artifact holds the version in `Format-Serving/`, as a Trainer's Model does, with custom
    properties `pushed_destination` (the version folder copied) and `pushed_from` (the Model
    folder that version was pushed from, per the destination's push log; '' when unknown).
"""

import os

from absl import logging
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.utils import io_utils, path_utils

from components.atomic_pusher import newest_version, read_push_log

PUSHED_DESTINATION_PROPERTY = 'pushed_destination'
PUSHED_FROM_PROPERTY = 'pushed_from'


def has_model(model: tfx.types.standard_artifacts.Model) -> bool:
  """Whether a Model artifact holds a SavedModel (a LatestPushedModel's may be empty)."""
  return fileio.exists(os.path.join(path_utils.serving_model_path(model.uri), 'saved_model.pb'))


@tfx.dsl.components.component
def LatestPushedModel(
    model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
    serving_model_dir: tfx.dsl.components.Parameter[str],
) -> None:
  """Copies the newest version under `serving_model_dir` into `model`; leaves it empty if none.

  Args:
    model: The output: the served model, or nothing before the first push.
    serving_model_dir: The Pusher's `push_destination.filesystem.base_directory`.
  """
  version = newest_version(serving_model_dir)
  if version is None:
    logging.info('No model pushed to %s yet: no baseline, no warm start.', serving_model_dir)
    fileio.makedirs(model.uri)
    return
  source = os.path.join(serving_model_dir, version)
  io_utils.copy_dir(source, path_utils.serving_model_dir(model.uri))
  pushed_from = [entry['model'] for entry in read_push_log(serving_model_dir)
                 if entry['version'] == version]
  model.set_string_custom_property(PUSHED_DESTINATION_PROPERTY, source)
  model.set_string_custom_property(PUSHED_FROM_PROPERTY, pushed_from[-1] if pushed_from else '')
  logging.info('The served model is version %s, copied from %s.', version, source)
