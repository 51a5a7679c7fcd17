"""The Trainers' run_fns: what a seed fixes."""

import os

import keras
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import classifier_trainer, models, training
from tests.conftest import trainer_fn_args


def _train_classifier(workdir, transform_dir, name: str, seed: int) -> str:
  """Fine-tunes a random encoder with dropout for a few steps; the digest of its weights."""
  fn_args = trainer_fn_args(workdir, transform_dir, name, epochs=1, steps_per_epoch=3)
  fn_args['custom_config'].update(seed=seed, dropout=0.1, head_dropout=0.1)
  classifier_trainer.run_fn(FnArgs(**fn_args))
  return training.weights_digest(keras.saving.load_model(
      os.path.join(fn_args['serving_model_dir'], models.CLASSIFIER_FILE)))


def test_the_same_seed_trains_the_same_weights_and_another_seed_others(transformed):
  workdir, transform_dir = transformed
  first = _train_classifier(workdir, transform_dir, 'seed-0', seed=0)
  assert _train_classifier(workdir, transform_dir, 'seed-0-again', seed=0) == first
  assert _train_classifier(workdir, transform_dir, 'seed-1', seed=1) != first

