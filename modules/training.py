"""The training loop both Trainers share: compile with AdamW, fit, log to TensorBoard."""

import hashlib
import json
import os
import sys
import time
from typing import List, Optional

import keras
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import models

# Written to the Trainer's ModelRun directory: step timing and the metrics of each epoch.
TRAINING_STATS_FILE = 'training_stats.json'


class StepTimer(keras.callbacks.Callback):
  """Times training steps after the first epoch (which pays for tracing and XLA compiling)."""

  def __init__(self, path: str):
    super().__init__()
    self._path = path
    self._first_epoch = None
    self._epoch = 0
    self._seconds = 0.0
    self._steps = 0
    self._started = 0.0
    self._history = []

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch
    if self._first_epoch is None:
      self._first_epoch = epoch  # Above 0 when training resumed from a backup.

  def on_train_batch_begin(self, batch, logs=None):
    self._started = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    if self._epoch > self._first_epoch:
      self._seconds += time.perf_counter() - self._started
      self._steps += 1

  def on_epoch_end(self, epoch, logs=None):
    self._history.append({key: float(value) for key, value in (logs or {}).items()})

  def on_train_end(self, logs=None):
    stats = {'first_epoch': self._first_epoch,
             'timed_steps': self._steps,
             'seconds_per_step': self._seconds / self._steps if self._steps else None,
             'epochs': self._history}
    with tf.io.gfile.GFile(self._path, 'w') as stats_file:
      stats_file.write(json.dumps(stats, indent=2))


def backup_dir(fn_args: FnArgs) -> str:
  """Where training backs up after each epoch, the same for every attempt on the same inputs.

  TFX gives each attempt new output folders; this one sits beside them, named by a digest of
  what the Trainer trains on and how, so a rerun after a crash resumes where it stopped.
  """
  attempt = json.dumps({'config': fn_args.custom_config, 'steps': fn_args.train_steps,
                        'train_files': sorted(fn_args.train_files),
                        'transform': fn_args.transform_output}, sort_keys=True)
  digest = hashlib.sha256(attempt.encode()).hexdigest()[:16]
  return os.path.join(os.path.dirname(fn_args.model_run_dir.rstrip('/')), f'backup-{digest}')


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

  The state is backed up after each epoch (`backup_dir`): an attempt killed midway is resumed
  by the next attempt from its last finished epoch, and the backup is deleted at the end.
  Progress bars in a terminal, one line per epoch in a log file.
  """
  config = fn_args.custom_config
  epochs = config['epochs']
  steps_per_epoch = max(1, fn_args.train_steps // epochs)
  model.compile(
      optimizer=models.optimizer(config['learning_rate'], steps_per_epoch * epochs,
                                 config['warmup_fraction'], config['weight_decay']),
      loss=loss, weighted_metrics=metrics, jit_compile=config['jit_compile'])
  # BackupAndRestore first: on a resumed attempt it restores before the others start.
  callbacks = [keras.callbacks.BackupAndRestore(backup_dir(fn_args)),
               keras.callbacks.TensorBoard(fn_args.model_run_dir),
               StepTimer(os.path.join(fn_args.model_run_dir, TRAINING_STATS_FILE))]
  if best_by:
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=best_by, mode='max', patience=epochs, restore_best_weights=True))
  return model.fit(train_dataset, validation_data=eval_dataset, epochs=epochs,
                   steps_per_epoch=steps_per_epoch, validation_steps=fn_args.eval_steps,
                   callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
