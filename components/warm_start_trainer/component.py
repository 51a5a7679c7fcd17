"""WarmStartTrainer: TFX's Trainer plus an optional `warm_start_model` input, on one replica or many.

The stock Trainer has one model input, `base_model`, which the ClassifierTrainer spends on the
pretrained encoder. Scheduled retraining also starts from the served classifier: this
component takes it as `warm_start_model` (a LatestPushedModel artifact, empty until the first
push) and hands its serving directory to the run_fn as `custom_config['warm_start_model']`
(None when it holds no model).

It trains in its own task, or, given a `VertexTraining`, as a Vertex AI Training job of several
replicas that its task starts and waits for: the executor of TFX's Google Cloud extension
(`tfx.extensions.google_cloud_ai_platform.Trainer`'s) launches it, and each replica runs this
component's executor, the same run_fn, with the TF_CONFIG that Vertex AI sets.
"""

import dataclasses
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils, path_utils

from components.latest_pushed_model import has_model
from modules.config import WARM_START_MODEL_KEY

_CUSTOM_CONFIG_KEY = standard_component_specs.CUSTOM_CONFIG_KEY
# The custom_config keys that launch a Vertex AI Training job; the run_fn never sees them.
VERTEX_TRAINING_KEYS = (vertex_executor.TRAINING_ARGS_KEY, vertex_constants.ENABLE_VERTEX_KEY,
                        vertex_constants.VERTEX_REGION_KEY)


@dataclasses.dataclass(frozen=True)
class VertexTraining:
  """Where and on what a Trainer runs as a Vertex AI Training job of `replicas` machines.

  Worker pool 0 holds the chief, pool 1 the other `replicas - 1` workers, all of them running
  `image` on `machine_type` (with `accelerator_count` accelerators of `accelerator_type`, if
  any). Vertex AI sets each replica's TF_CONFIG (task types `chief` and `worker`), and the run
  functions then train data-parallel on all of them (`modules.training.distribution_strategy`);
  only the chief writes the outputs. When a replica is restarted, preempted or failed, Vertex
  AI restarts them all (`restart_job_on_worker_restart`: synchronous training cannot go on
  without one), and they resume from the chief's last per-epoch backup.
  """
  project: str  # Google Cloud project that runs the job.
  region: str  # Vertex AI region, e.g. us-central1.
  image: str  # The project's image (Dockerfile), as the pipeline's tasks run it.
  replicas: int
  machine_type: str = 'n1-standard-8'
  accelerator_type: Optional[str] = None  # E.g. NVIDIA_TESLA_T4; None: CPUs only.
  accelerator_count: int = 0
  service_account: Optional[str] = None  # What the replicas run as; None: Vertex AI's default.

  def __post_init__(self):
    for name in ('project', 'region', 'image'):
      if not getattr(self, name):
        raise ValueError(f'Vertex AI Training needs a {name} (got {getattr(self, name)!r})')
    if self.replicas < 1:
      raise ValueError(f'Vertex AI Training needs at least one replica, not {self.replicas}')
    if bool(self.accelerator_type) != (self.accelerator_count > 0):
      raise ValueError('Vertex AI Training: give both accelerator_type and accelerator_count, '
                       f'or neither (got {self.accelerator_type!r}, {self.accelerator_count})')

  def worker_pool_specs(self) -> List[Dict[str, Any]]:
    """The CustomJob's worker pools: the chief's, then the other workers' if any."""
    machine = {'machine_type': self.machine_type}
    if self.accelerator_type:
      machine.update(accelerator_type=self.accelerator_type,
                     accelerator_count=self.accelerator_count)
    counts = [1] + ([self.replicas - 1] if self.replicas > 1 else [])
    return [{'machine_spec': machine, 'replica_count': count,
             'container_spec': {'image_uri': self.image}} for count in counts]

  def custom_config(self) -> Dict[str, Any]:
    """What the Vertex executor reads from a Trainer's custom_config (VERTEX_TRAINING_KEYS)."""
    job_spec = {'worker_pool_specs': self.worker_pool_specs(),
                'scheduling': {'restart_job_on_worker_restart': True}}
    if self.service_account:
      job_spec['service_account'] = self.service_account
    return {
        vertex_executor.TRAINING_ARGS_KEY: {'project': self.project, 'job_spec': job_spec},
        vertex_constants.ENABLE_VERTEX_KEY: True,
        vertex_constants.VERTEX_REGION_KEY: self.region,
    }


class WarmStartTrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {**standard_component_specs.TrainerSpec.INPUTS,
            WARM_START_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True)}


class Executor(trainer_executor.GenericExecutor):
  """The Trainer's executor, with the warm-start model's path put into custom_config.

  It runs in the component's task, or in each replica of a Vertex AI Training job; there the
  custom_config still holds the job's settings, which it drops before the run_fn sees them.
  """

  def Do(self, input_dict, output_dict, exec_properties):
    warm_start = [model for model in input_dict.get(WARM_START_MODEL_KEY, []) if has_model(model)]
    config = json_utils.loads(exec_properties.get(_CUSTOM_CONFIG_KEY) or 'null') or {}
    config = {key: value for key, value in config.items() if key not in VERTEX_TRAINING_KEYS}
    config[WARM_START_MODEL_KEY] = (
        path_utils.serving_model_path(warm_start[0].uri) if warm_start else None)
    super().Do(input_dict, output_dict,
               {**exec_properties, _CUSTOM_CONFIG_KEY: json_utils.dumps(config)})


class VertexExecutor(vertex_executor.GenericExecutor):
  """Starts a Vertex AI Training job whose replicas run `Executor`, and waits for it to end."""

  def _GetExecutorClass(self):
    return Executor


class WarmStartTrainer(base_component.BaseComponent):
  """Trains with a `run_fn` on transformed examples; may start from an earlier model."""

  SPEC_CLASS = WarmStartTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, run_fn: str, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
               custom_config: Dict[str, Any], base_model: Optional[types.BaseChannel] = None,
               warm_start_model: Optional[types.BaseChannel] = None,
               vertex_training: Optional[VertexTraining] = None):
    """Constructs the component; the arguments are the stock Trainer's, plus one.

    Args:
      run_fn: Module path of the training function.
      examples: Transformed examples.
      transform_graph: Transform's graph.
      train_args: Training splits and steps.
      eval_args: Evaluation splits and steps.
      custom_config: Passed to the run_fn, with `warm_start_model` added.
      base_model: A model the run_fn builds on (here: the pretrained encoder).
      warm_start_model: A model to continue training from, when it holds one.
      vertex_training: Train as a Vertex AI Training job of several replicas; None trains in
        the component's own task (or process, locally).
    """
    if vertex_training:
      custom_config = {**custom_config, **vertex_training.custom_config()}
    super().__init__(
        spec=WarmStartTrainerSpec(
            examples=examples, transform_graph=transform_graph, base_model=base_model,
            warm_start_model=warm_start_model, train_args=train_args, eval_args=eval_args,
            run_fn=run_fn, custom_config=json_utils.dumps(custom_config),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun)),
        custom_executor_spec=(executor_spec.ExecutorClassSpec(VertexExecutor)
                              if vertex_training else None))
