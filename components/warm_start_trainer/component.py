"""WarmStartTrainer: TFX's Trainer plus an optional `warm_start_model` input.

The stock Trainer has one model input, `base_model`, which the ClassifierTrainer spends on the
pretrained encoder. Scheduled retraining also starts from the served classifier: this
component takes it as `warm_start_model` (a LatestPushedModel artifact, empty until the first
push) and hands its serving directory to the run_fn as `custom_config['warm_start_model']`
(None when it holds no model).
"""

from typing import Any, Dict, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils, path_utils

from components.latest_pushed_model import has_model
from modules.config import WARM_START_MODEL_KEY

_CUSTOM_CONFIG_KEY = standard_component_specs.CUSTOM_CONFIG_KEY


class WarmStartTrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {**standard_component_specs.TrainerSpec.INPUTS,
            WARM_START_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True)}


class Executor(trainer_executor.GenericExecutor):
  """The Trainer's executor, with the warm-start model's path put into custom_config."""

  def Do(self, input_dict, output_dict, exec_properties):
    warm_start = [model for model in input_dict.get(WARM_START_MODEL_KEY, []) if has_model(model)]
    config = json_utils.loads(exec_properties.get(_CUSTOM_CONFIG_KEY) or 'null') or {}
    config[WARM_START_MODEL_KEY] = (
        path_utils.serving_model_path(warm_start[0].uri) if warm_start else None)
    super().Do(input_dict, output_dict,
               {**exec_properties, _CUSTOM_CONFIG_KEY: json_utils.dumps(config)})


class WarmStartTrainer(base_component.BaseComponent):
  """Trains with a `run_fn` on transformed examples; may start from an earlier model."""

  SPEC_CLASS = WarmStartTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, run_fn: str, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
               custom_config: Dict[str, Any], base_model: Optional[types.BaseChannel] = None,
               warm_start_model: Optional[types.BaseChannel] = None):
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
    """
    super().__init__(spec=WarmStartTrainerSpec(
        examples=examples, transform_graph=transform_graph, base_model=base_model,
        warm_start_model=warm_start_model, train_args=train_args, eval_args=eval_args,
        run_fn=run_fn, custom_config=json_utils.dumps(custom_config),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun)))
