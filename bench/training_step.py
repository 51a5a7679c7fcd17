"""Benchmark of the MLM training step alone: writes bench/results/training-step-PRESET.{json,md}.

Runs `modules/training.fit` (the loop both Trainers use) on the preset's masked-LM with random
batches of the preset's shapes, without the pipeline: a few minutes instead of the full run, for
comparing changes to the loop, the model or the thread settings. Same FLOP count and matmul
peak as bench/run_benchmark.py.

Usage: python bench/training_step.py [--preset default] [--steps 20] [--vocabulary_size N]
                                     [--dtype_policy POLICY] [--name NAME]
"""

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile

import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import config, features, models, outputs, training
from pipeline import configs
from run_benchmark import (machine, matmul_flops_per_second,  # This folder's.
                           mlm_speed_row, mlm_training_flops_per_sequence, write_results)

EPOCHS = 3  # The first pays for tracing and XLA and is not timed.


def _random_batches(preset: configs.Preset) -> tf.data.Dataset:
  """One masked-LM batch of the preset's shapes, repeated: ids drawn uniformly from the vocabulary
  once, so that the timing is the step's alone."""
  batch, length = preset.pretraining.batch_size, preset.sequence_length
  predictions = features.max_predictions(length)

  def draw():
    inputs = {
        features.TOKEN_IDS_KEY: tf.random.uniform(
            [batch, length], features.NUM_SPECIAL_TOKENS, preset.vocabulary_size, tf.int64),
        models.MASK_POSITIONS_INPUT: tf.random.uniform([batch, predictions], 1, length - 1, tf.int64),
    }
    labels = tf.random.uniform(
        [batch, predictions], features.NUM_SPECIAL_TOKENS, preset.vocabulary_size, tf.int64)
    return inputs, labels, tf.ones([batch, predictions])

  return tf.data.Dataset.from_tensors(draw()).repeat()


def seconds_per_step(preset: configs.Preset, steps_per_epoch: int) -> dict:
  """`training.fit`'s statistics of the MLM training: mean seconds of a timed step, dtype policies."""
  strategy = training.distribution_strategy()
  workdir = tempfile.mkdtemp(prefix='training-step-')
  schedule = dataclasses.replace(preset.pretraining, epochs=EPOCHS)
  fn_args = FnArgs(train_files=[], eval_files=[], train_steps=EPOCHS * steps_per_epoch,
                   eval_steps=1, transform_output=workdir,
                   model_run_dir=os.path.join(workdir, 'run'),
                   serving_model_dir=os.path.join(workdir, 'model'))
  with strategy.scope():
    encoder = models.build_encoder(preset.vocabulary_size, preset.sequence_length, preset.encoder,
                                   schedule.dropout, training.dtype_policy(schedule.dtype_policy))
    model = models.build_masked_lm(encoder, features.max_predictions(preset.sequence_length),
                                   preset.pretraining.tie_word_embeddings)
  batches = _random_batches(preset)
  training.fit(model, batches, batches, fn_args, schedule, strategy,
               loss=models.MaskedLMCrossEntropy(),
               metrics=[models.MaskedTokenAccuracy()])
  with open(os.path.join(fn_args.model_run_dir, outputs.TRAINING_STATS_FILE)) as stats_file:
    return json.load(stats_file)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--preset', choices=sorted(configs.PRESETS), default='default')
  parser.add_argument('--steps', type=int, default=20, help='Steps per epoch')
  parser.add_argument('--vocabulary_size', type=int,
                      help="Instead of the preset's: how much of the step the masked-LM head's "
                           'projection onto the vocabulary takes')
  parser.add_argument('--dtype_policy', choices=config.DTYPE_POLICIES,
                      help="Instead of the preset's pretraining dtype policy")
  parser.add_argument('--name', help='Of the results files, bench/results/NAME.* '
                                     '(default: training-step-PRESET)')
  args = parser.parse_args()
  preset = configs.PRESETS[args.preset]
  if args.vocabulary_size:
    preset = dataclasses.replace(preset, vocabulary_size=args.vocabulary_size)
  if args.dtype_policy:
    preset = dataclasses.replace(
        preset, pretraining=dataclasses.replace(preset.pretraining, dtype_policy=args.dtype_policy))
  matmul = matmul_flops_per_second()
  bfloat16_matmul = matmul_flops_per_second(tf.bfloat16)
  stats = seconds_per_step(preset, args.steps)
  seconds = stats['seconds_per_step']
  achieved = mlm_training_flops_per_sequence(preset) * preset.pretraining.batch_size / seconds
  result = {'preset': args.preset, 'settings': dataclasses.asdict(preset),
            'date': datetime.datetime.now().isoformat(timespec='seconds'),
            'machine': machine(), 'timed_steps': (EPOCHS - 1) * args.steps,
            'seconds_per_step': seconds,
            'tokens_per_second': preset.pretraining.batch_size * preset.sequence_length / seconds,
            'dtype_policies': stats['dtype_policies'], 'achieved_gflops': achieved / 1e9,
            'matmul_gflops': matmul / 1e9, 'bfloat16_matmul_gflops': bfloat16_matmul / 1e9,
            'flops_ratio': achieved / matmul}
  table = (f"# MLM training step: preset `{args.preset}`, vocabulary {preset.vocabulary_size:,}, "
           f"{result['date']}\n\n"
           f"Machine: {result['machine']['cores']} cores, {result['machine']['cpu']}\n\n"
           '| measure | value |\n| --- | --- |\n'
           f"| seconds per step ({result['timed_steps']} timed) | {seconds:.3f} |\n"
           f"| tokens/s | {result['tokens_per_second']:.0f} |\n"
           f"{mlm_speed_row(result, result)}\n")
  write_results(args.name or f'training-step-{args.preset}', result, table)
  return 0


if __name__ == '__main__':
  sys.exit(main())
