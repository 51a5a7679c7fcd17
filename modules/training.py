"""The training loop both Trainers share: data-parallel over the workers that TF_CONFIG names.

One loop for one machine and for many: `strategy.run` steps over each worker's share of the
batch, AdamW all-reduces the gradients, and every epoch is validated, backed up (a killed
attempt resumes from it) and logged to TensorBoard. Keras 3's `fit` cannot train under
`MultiWorkerMirroredStrategy` (keras-team/keras#20585), hence a loop of our own.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import config, models, outputs

# Written to the backup directory after each epoch: {"epoch": epochs finished}.
BACKUP_PROGRESS_FILE = 'progress.json'
# XLA's CPU compiler rewrites each long reduction (a bias's gradient over the batch's tokens,
# the softmax's max over the vocabulary) into a tree of reduce-windows, which run several times
# slower on CPU than the reduction they replace (bench/README.md): this turns that pass off.
# GPUs have a pass of their own.
_XLA_CPU_PLAIN_REDUCTIONS = '--xla_disable_hlo_passes=tree_reduction_rewriter'
# The dtype policy that `dtype_policy('auto')` picks where the CPU multiplies bfloat16 matrices
# in hardware (AMX), where it was measured faster (bench/README.md). Elsewhere 'auto' is float32:
# CPUs without AMX (bfloat16 dot products only, or none) and GPUs were not measured.
_BFLOAT16_POLICY = 'mixed_bfloat16'
_BFLOAT16_CPU_FLAG = 'amx_bf16'


def distribution_strategy() -> tf.distribute.Strategy:
  """`MultiWorkerMirroredStrategy` when TF_CONFIG names more than one task, else the default.

  Kubeflow's and managed training services' replicas get TF_CONFIG from the launcher. Call
  this first in a run_fn: collective ops must be set up before TensorFlow runs any op.
  """
  cluster = json.loads(os.environ.get('TF_CONFIG') or '{}').get('cluster', {})
  if sum(len(tasks) for tasks in cluster.values()) > 1:
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def dtype_policy(setting: str, cpuinfo: str = '/proc/cpuinfo') -> str:
  """The Keras dtype policy to train with: `setting`, or for 'auto' the fastest on this machine.

  Args:
    setting: 'float32', 'mixed_bfloat16' (bfloat16 compute, float32 weights) or 'auto':
      'mixed_bfloat16' on a CPU with AMX (`cpuinfo` lists `amx_bf16`) and no GPU, else 'float32'.
    cpuinfo: Where Linux lists the CPU's flags; absent elsewhere, which reads as no AMX.
  """
  if setting != 'auto':
    return setting
  if tf.config.list_physical_devices('GPU') or not os.path.exists(cpuinfo):
    return 'float32'
  with open(cpuinfo) as cpu:
    flags = {flag for line in cpu if line.startswith('flags') for flag in line.split(':', 1)[1].split()}
  return _BFLOAT16_POLICY if _BFLOAT16_CPU_FLAG in flags else 'float32'


def _use_plain_xla_reductions() -> None:
  """Adds `_XLA_CPU_PLAIN_REDUCTIONS` to XLA_FLAGS unless they already name passes to disable.

  XLA reads XLA_FLAGS at the process's first compilation: call this before it.
  """
  flags = os.environ.get('XLA_FLAGS', '')
  if '--xla_disable_hlo_passes' not in flags:
    os.environ['XLA_FLAGS'] = f'{flags} {_XLA_CPU_PLAIN_REDUCTIONS}'.strip()


@contextlib.contextmanager
def output_dir(path: str, strategy: tf.distribute.Strategy) -> Iterator[str]:
  """Where this worker writes `path`'s files: `path` itself on the chief, else a throwaway dir.

  Every worker must save (saving may need all of them), but only the chief's copy is kept.
  No worker leaves the block before all have: when a worker's run_fn returns, the chief's
  files are written (TFX's Trainer fails a worker that finds no model folder).
  """
  if strategy.extended.should_checkpoint:
    yield path
    _wait_for_all(strategy)
    return
  scratch = tempfile.mkdtemp(prefix='non-chief-')
  try:
    yield scratch
    _wait_for_all(strategy)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def _wait_for_all(strategy: tf.distribute.Strategy) -> None:
  """Returns once every worker of a multi-worker `strategy` has called it (an all-reduce)."""
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    strategy.reduce(tf.distribute.ReduceOp.SUM,
                    strategy.run(tf.function(lambda: tf.constant(1.0))), axis=None)


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


def weights_digest(model: keras.Model) -> str:
  """SHA-256 of the model's weights: equal on every worker that trained in sync."""
  digest = hashlib.sha256()
  for weight in model.get_weights():
    digest.update(np.ascontiguousarray(weight).tobytes())
  return digest.hexdigest()


class _Backup:
  """The model, optimizer and finished epochs, saved after each epoch and restored on start.

  Restores from `directory` (the chief's backup) and saves to `save_to` (`output_dir` of it).
  """

  def __init__(self, directory: str, save_to: str, model: keras.Model,
               optimizer: keras.optimizers.Optimizer):
    self._save_to = save_to
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch)
    self._manager = tf.train.CheckpointManager(checkpoint, save_to, max_to_keep=1)
    latest = tf.train.latest_checkpoint(directory)
    if latest:
      checkpoint.restore(latest)
      logging.info('Resuming from %s after epoch %d', latest, int(self.epoch.numpy()))

  def save(self, epochs_done: int) -> None:
    self.epoch.assign(epochs_done)
    self._manager.save()
    with tf.io.gfile.GFile(os.path.join(self._save_to, BACKUP_PROGRESS_FILE), 'w') as out:
      out.write(json.dumps({'epoch': epochs_done}))

  def delete(self) -> None:
    """Removes the backup once training finished."""
    if tf.io.gfile.exists(self._save_to):
      tf.io.gfile.rmtree(self._save_to)


class _Steps:
  """The distributed training and validation steps of one model, loss and set of metrics."""

  def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer,
               loss: keras.losses.Loss, metrics: List[keras.metrics.Metric],
               strategy: tf.distribute.Strategy, jit_compile: bool):
    self._model, self._optimizer, self._loss, self._strategy = model, optimizer, loss, strategy
    # Metric variables sum over the workers when read: they are made under the strategy.
    with strategy.scope():
      self.train_metrics = [keras.metrics.Mean(name='loss')] + [
          _copy(metric, metric.name) for metric in metrics]
      self.val_metrics = [keras.metrics.Mean(name='val_loss')] + [
          _copy(metric, f'val_{metric.name}') for metric in metrics]
    # XLA compiles forward and backward; the update stays outside, where the gradients of
    # several workers can be all-reduced.
    self._gradients = tf.function(self._forward_backward, jit_compile=jit_compile)
    self._predict = tf.function(self._forward, jit_compile=jit_compile)
    self.train = tf.function(self._train_step)
    self.validate = tf.function(self._validate_step)

  def _forward(self, inputs, targets, weights):
    predictions = self._model(inputs, training=False)
    return predictions, self._loss(targets, predictions, weights)

  def _forward_backward(self, inputs, targets, weights):
    with tf.GradientTape() as tape:
      predictions = self._model(inputs, training=True)
      # The mean over this worker's share; the all-reduce sums the shares.
      loss = self._loss(targets, predictions, weights)
      scaled = loss / self._strategy.num_replicas_in_sync
    return tape.gradient(scaled, self._model.trainable_variables), predictions, loss

  def _train_step(self, iterator):
    def step(batch):
      inputs, targets, weights = keras.utils.unpack_x_y_sample_weight(batch)
      gradients, predictions, loss = self._gradients(inputs, targets, weights)
      self._optimizer.apply_gradients(zip(gradients, self._model.trainable_variables, strict=True))
      _update(self.train_metrics, loss, targets, predictions, weights)
    self._strategy.run(step, args=(next(iterator),))

  def _validate_step(self, iterator):
    def step(batch):
      inputs, targets, weights = keras.utils.unpack_x_y_sample_weight(batch)
      predictions, loss = self._predict(inputs, targets, weights)
      _update(self.val_metrics, loss, targets, predictions, weights)
    self._strategy.run(step, args=(next(iterator),))


def _copy(metric: keras.metrics.Metric, name: str) -> keras.metrics.Metric:
  return type(metric).from_config({**metric.get_config(), 'name': name})


def _update(metrics: List[keras.metrics.Metric], loss, targets, predictions, weights) -> None:
  """The loss metric, then the others weighted by the batch's weights."""
  metrics[0].update_state(loss)
  for metric in metrics[1:]:
    metric.update_state(targets, predictions, sample_weight=weights)


def _results(metrics: List[keras.metrics.Metric]) -> Dict[str, float]:
  """Each metric's value over all workers, then reset for the next epoch."""
  results = {metric.name: float(metric.result()) for metric in metrics}
  for metric in metrics:
    metric.reset_state()
  return results


class _Log:
  """Per-epoch TensorBoard scalars (train/ and validation/), step timing, the dtype policies the
  model's layers computed in, and the epoch history."""

  def __init__(self, model_run_dir: str, first_epoch: int, model: keras.Model):
    self._dir = model_run_dir
    self._writers = {part: tf.summary.create_file_writer(os.path.join(model_run_dir, part))
                     for part in ('train', 'validation')}
    policies = sorted({layer.dtype_policy.name for layer in model.layers if layer.weights})
    self._stats = {'first_epoch': first_epoch, 'timed_steps': 0, 'seconds_per_step': None,
                   'dtype_policies': policies, 'epochs': []}
    self._timed_seconds = 0.0

  def time_steps(self, epoch: int, steps: int, seconds: float) -> None:
    """Counts an epoch's steps, except those of the first, which pays for tracing and XLA."""
    if epoch > self._stats['first_epoch']:
      self._stats['timed_steps'] += steps
      self._timed_seconds += seconds
      self._stats['seconds_per_step'] = self._timed_seconds / self._stats['timed_steps']

  def epoch_end(self, epoch: int, logs: Dict[str, float]) -> None:
    self._stats['epochs'].append(logs)
    for part, writer in self._writers.items():
      with writer.as_default(step=epoch):
        for name, value in logs.items():
          if name.startswith('val_') == (part == 'validation'):
            tf.summary.scalar(f'epoch_{name.removeprefix("val_")}', value)
    with tf.io.gfile.GFile(os.path.join(self._dir, outputs.TRAINING_STATS_FILE), 'w') as stats_file:
      stats_file.write(json.dumps(self._stats, indent=2))


def fit(model: keras.Model, train_dataset: tf.data.Dataset, eval_dataset: tf.data.Dataset,
        fn_args: FnArgs, schedule: config.TrainingConfig, strategy: tf.distribute.Strategy,
        loss: keras.losses.Loss, metrics: List[keras.metrics.Metric],
        best_by: Optional[str] = None) -> List[Dict[str, float]]:
  """Trains for `fn_args.train_steps` steps, validating `schedule.epochs` times.

  Args:
    model: The model to train, built under `strategy.scope()`.
    train_dataset: Endless (inputs, targets[, weights]) batches of the global batch size.
    eval_dataset: Endless validation batches; `fn_args.eval_steps` of them per validation.
    fn_args: The Trainer's arguments: steps, output folders.
    schedule: `epochs`, `learning_rate`, `warmup_fraction`, `weight_decay`, `jit_compile`.
    strategy: From `distribution_strategy()`: each worker trains on its share of each batch.
    loss: The training loss, weighted by the dataset's weights where it has them.
    metrics: Metrics to report, weighted likewise (copies are made under the strategy).
    best_by: A validation metric (higher is better) whose best epoch's weights are kept.

  Returns:
    The metrics of each epoch trained by this attempt (`val_` for validation).

  The state is backed up after each epoch (`backup_dir`): an attempt killed midway is resumed
  by the next attempt from its last finished epoch, and the backup is deleted at the end.
  A progress bar in a terminal, one line per epoch in a log file.
  """
  if schedule.jit_compile:
    _use_plain_xla_reductions()
  epochs = schedule.epochs
  steps_per_epoch = max(1, fn_args.train_steps // epochs)
  with strategy.scope():
    optimizer = models.optimizer(schedule.learning_rate, steps_per_epoch * epochs,
                                 schedule.warmup_fraction, schedule.weight_decay)
    optimizer.build(model.trainable_variables)
  steps = _Steps(model, optimizer, loss, metrics, strategy, schedule.jit_compile)
  logging.info('Training on %d replica(s) in sync', strategy.num_replicas_in_sync)
  train_batches = iter(strategy.experimental_distribute_dataset(train_dataset))
  eval_batches = iter(strategy.experimental_distribute_dataset(eval_dataset))
  history, best = [], None
  # Every worker writes; only the chief's folders are the real ones (see `output_dir`).
  with output_dir(fn_args.model_run_dir, strategy) as model_run_dir, \
      output_dir(backup_dir(fn_args), strategy) as backup_to:
    backup = _Backup(backup_dir(fn_args), backup_to, model, optimizer)
    first_epoch = int(backup.epoch.numpy())
    log = _Log(model_run_dir, first_epoch, model)
    for epoch in range(first_epoch, epochs):
      progress = keras.utils.Progbar(steps_per_epoch, verbose=1 if sys.stdout.isatty() else 2)
      print(f'Epoch {epoch + 1}/{epochs}', flush=True)
      started = time.perf_counter()
      for step in range(steps_per_epoch):
        steps.train(train_batches)
        progress.update(step + 1, finalize=False)
      log.time_steps(epoch, steps_per_epoch, time.perf_counter() - started)
      for _ in range(fn_args.eval_steps):
        steps.validate(eval_batches)
      logs = {**_results(steps.train_metrics), **_results(steps.val_metrics),
              'learning_rate': float(optimizer.learning_rate)}
      progress.update(steps_per_epoch, values=list(logs.items()), finalize=True)
      if best_by and (best is None or logs[best_by] > best[0]):
        best = (logs[best_by], model.get_weights())
      history.append(logs)
      log.epoch_end(epoch, logs)
      backup.save(epoch + 1)
    backup.delete()
  if best:
    model.set_weights(best[1])
  logging.info('Weights after training: %s', weights_digest(model))
  return history
