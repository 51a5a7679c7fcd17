"""The training loop both Trainers share: compile with AdamW, fit, log to TensorBoard."""

from typing import List, Optional

import keras
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import models


def fit(model: keras.Model, train_dataset: tf.data.Dataset, eval_dataset: tf.data.Dataset,
        fn_args: FnArgs, loss: keras.losses.Loss, metrics: List[keras.metrics.Metric],
        best_by: Optional[str] = None) -> keras.callbacks.History:
  """Trains for `fn_args.train_steps` steps, validating `custom_config['epochs']` times.

  Args:
    model: The model to compile and train.
    train_dataset: Endless (inputs, targets[, weights]) batches.
    eval_dataset: Endless validation batches; `fn_args.eval_steps` of them per validation.
    fn_args: The Trainer's arguments; `custom_config` holds `epochs`, `learning_rate`,
      `warmup_fraction`, `weight_decay` and `jit_compile`.
    loss: The training loss.
    metrics: Metrics, weighted by the dataset's weights where it has them.
    best_by: A validation metric (higher is better) whose best epoch's weights are kept.
  """
  config = fn_args.custom_config
  epochs = config['epochs']
  steps_per_epoch = max(1, fn_args.train_steps // epochs)
  model.compile(
      optimizer=models.optimizer(config['learning_rate'], steps_per_epoch * epochs,
                                 config['warmup_fraction'], config['weight_decay']),
      loss=loss, weighted_metrics=metrics, jit_compile=config['jit_compile'])
  callbacks = [keras.callbacks.TensorBoard(fn_args.model_run_dir)]
  if best_by:
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=best_by, mode='max', patience=epochs, restore_best_weights=True))
  return model.fit(train_dataset, validation_data=eval_dataset, epochs=epochs,
                   steps_per_epoch=steps_per_epoch, validation_steps=fn_args.eval_steps,
                   callbacks=callbacks, verbose=2)
