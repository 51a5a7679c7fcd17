"""TFX's Trainer with a second model input (the model to warm-start from), on one or many replicas."""

from components.warm_start_trainer.component import (WARM_START_MODEL_KEY, VertexTraining,
                                                     WarmStartTrainer)

__all__ = ['WARM_START_MODEL_KEY', 'VertexTraining', 'WarmStartTrainer']
