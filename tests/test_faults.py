"""Faults: a Trainer killed during training resumes from its last finished epoch."""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import training
from pipeline import configs
from tests.conftest import make_review, transform_reviews, write_transformed

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = configs.PRESETS['smoke']
EPOCHS = 6
_ATTEMPT_SCRIPT = '''
import json, sys
from tfx.components.trainer.fn_args_utils import FnArgs
from modules import pretrain_trainer
pretrain_trainer.run_fn(FnArgs(**json.loads(sys.argv[1])))
'''


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('faults')
  rng = random.Random(11)
  labels = [i % 2 for i in range(200)]
  rows, transform_dir = transform_reviews(
      [make_review(rng, positive=label == 1) for label in labels], labels, workdir,
      PRESET.sequence_length, PRESET.vocabulary_size)
  write_transformed(rows[:160], transform_dir, str(workdir / 'train.gz'))
  write_transformed(rows[160:], transform_dir, str(workdir / 'eval.gz'))
  return workdir, transform_dir


def _fn_args(workdir, transform_dir, attempt):
  """What TFX gives each attempt: the same inputs, new output folders."""
  schedule = dataclasses.replace(PRESET.pretraining, epochs=EPOCHS)
  return {
      'train_files': [str(workdir / 'train.gz')], 'eval_files': [str(workdir / 'eval.gz')],
      'train_steps': EPOCHS * 150, 'eval_steps': 1, 'transform_output': transform_dir,
      'serving_model_dir': str(workdir / 'model' / str(attempt)),
      'model_run_dir': str(workdir / 'model_run' / str(attempt)),
      'custom_config': {**dataclasses.asdict(PRESET.encoder), **dataclasses.asdict(schedule)},
  }


def _attempt(fn_args):
  return subprocess.Popen([sys.executable, '-c', _ATTEMPT_SCRIPT, json.dumps(fn_args)],
                          cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def test_a_killed_trainer_resumes_from_its_last_epoch(transformed):
  workdir, transform_dir = transformed
  first_args, second_args = (_fn_args(workdir, transform_dir, attempt) for attempt in (1, 2))
  backup = training.backup_dir(FnArgs(**first_args))
  assert backup == training.backup_dir(FnArgs(**second_args))
  progress = os.path.join(backup, 'training_metadata.json')

  first = _attempt(first_args)
  deadline = time.time() + 300
  while time.time() < deadline and first.poll() is None:
    if os.path.exists(progress) and json.load(open(progress)).get('epoch', 0) >= 2:
      break
    time.sleep(0.05)
  assert first.poll() is None, 'the first attempt ended before it could be killed'
  first.send_signal(signal.SIGKILL)
  first.wait()
  resumed_from = json.load(open(progress))['epoch']

  second = _attempt(second_args)
  log = second.communicate(timeout=600)[0]
  assert second.returncode == 0, log[-4000:]
  stats = json.load(open(os.path.join(second_args['model_run_dir'], training.TRAINING_STATS_FILE)))
  assert stats['first_epoch'] == resumed_from >= 2
  assert len(stats['epochs']) == EPOCHS - resumed_from
  assert os.path.isfile(os.path.join(second_args['serving_model_dir'], 'encoder.keras'))
  assert not os.path.exists(backup)  # Deleted once training finished.
