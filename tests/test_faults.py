"""Faults: a killed Trainer, or a killed pipeline run, resumes from the last finished epoch."""

import json
import os
import signal
import subprocess
import sys

import pytest
from tfx.components.trainer.fn_args_utils import FnArgs

from components.atomic_pusher.component import PUSH_LOG
from modules import outputs, training
from tests.conftest import (REPO_ROOT, SMOKE_PIPELINE, run_smoke_pipeline, smoke_run_command,
                            trainer_fn_args, wait_for_backup_epoch, write_corpus)

pytestmark = pytest.mark.slow  # Trainers and pipelines killed and rerun in subprocesses.

EPOCHS = 6
_ATTEMPT_SCRIPT = '''
import json, sys
from tfx.components.trainer.fn_args_utils import FnArgs
from modules import pretrain_trainer
pretrain_trainer.run_fn(FnArgs(**json.loads(sys.argv[1])))
'''
# local_runner.py with the smoke preset's pretraining stretched to EPOCHS epochs, so that the run
# can be killed between two of them.
_LONG_PRETRAINING_RUNNER = f'''
import dataclasses, sys
import local_runner

from pipeline import configs
smoke = configs.PRESETS['smoke']
configs.PRESETS['smoke'] = dataclasses.replace(smoke, pretraining=dataclasses.replace(
    smoke.pretraining, steps={EPOCHS} * smoke.pretraining.steps, epochs={EPOCHS}))
sys.exit(local_runner.main())
'''
UPSTREAM_OF_PRETRAINING = ('ImdbExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
                           'DataGate', 'Transform')


def _fn_args(workdir, transform_dir, attempt):
  """What TFX gives each attempt: the same inputs, new output folders."""
  return trainer_fn_args(workdir, transform_dir, f'attempt-{attempt}', EPOCHS, steps_per_epoch=150)


def _attempt(fn_args):
  return subprocess.Popen([sys.executable, '-c', _ATTEMPT_SCRIPT, json.dumps(fn_args)],
                          cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def test_a_killed_trainer_resumes_from_its_last_epoch(transformed):
  workdir, transform_dir = transformed
  first_args, second_args = (_fn_args(workdir, transform_dir, attempt) for attempt in (1, 2))
  backup = training.backup_dir(FnArgs(**first_args))
  assert backup == training.backup_dir(FnArgs(**second_args))
  progress = os.path.join(backup, training.BACKUP_PROGRESS_FILE)

  first = _attempt(first_args)
  wait_for_backup_epoch(progress, 2, first)
  first.send_signal(signal.SIGKILL)
  first.wait()
  resumed_from = json.load(open(progress))['epoch']

  second = _attempt(second_args)
  log = second.communicate(timeout=600)[0]
  assert second.returncode == 0, log[-4000:]
  stats = json.load(open(os.path.join(second_args['model_run_dir'], outputs.TRAINING_STATS_FILE)))
  assert stats['first_epoch'] == resumed_from >= 2
  assert len(stats['epochs']) == EPOCHS - resumed_from
  assert os.path.isfile(os.path.join(second_args['serving_model_dir'], 'encoder.keras'))
  assert not os.path.exists(backup)  # Deleted once training finished.


def test_a_pipeline_killed_in_pretraining_reruns_from_cache_resumes_and_pushes_once(tmp_path):
  corpus = write_corpus(tmp_path, reviews_per_folder=120)
  output_dir = tmp_path / 'out'
  runner = ('-c', _LONG_PRETRAINING_RUNNER)
  killed = subprocess.Popen(smoke_run_command(corpus, output_dir, runner=runner), cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  progress = wait_for_backup_epoch(str(output_dir / 'pipelines' / SMOKE_PIPELINE / 'PretrainTrainer' /
                                 '*' / 'backup-*' / training.BACKUP_PROGRESS_FILE), 2, killed)
  killed.send_signal(signal.SIGKILL)
  killed.wait()
  resumed_from = json.load(open(progress))['epoch']
  serving = output_dir / 'serving_model' / SMOKE_PIPELINE
  assert not serving.exists()

  result, rerun = run_smoke_pipeline(corpus, output_dir, runner=runner)
  assert result.returncode == 0, result.stderr[-5000:]
  states = {component.component_id: component.state for component in rerun.components}
  assert {states[component] for component in UPSTREAM_OF_PRETRAINING} == {'CACHED'}
  assert states['PretrainTrainer'] == 'COMPLETE'
  stats = json.load(open(os.path.join(rerun.outputs['PretrainTrainer']['ModelRun'],
                                      outputs.TRAINING_STATS_FILE)))
  assert stats['first_epoch'] == resumed_from >= 2
  assert len(stats['epochs']) == EPOCHS - resumed_from
  assert rerun.blessed is True
  assert sorted(os.listdir(serving)) == sorted([PUSH_LOG, os.path.basename(rerun.pushed_to)])
  assert len(json.load(open(serving / PUSH_LOG))) == 1
