"""Training past one machine: workers named by TF_CONFIG train one model together."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import outputs, training
from tests.conftest import REPO_ROOT, trainer_fn_args

pytestmark = pytest.mark.slow  # Two training processes per test.

_WORKER_SCRIPT = '''
import importlib, json, sys
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs
logging.set_verbosity(logging.INFO)  # As the Trainer's executor logs.
importlib.import_module(sys.argv[1]).run_fn(FnArgs(**json.loads(sys.argv[2])))
'''


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for sock in sockets:
    sock.bind(('127.0.0.1', 0))
  ports = [sock.getsockname()[1] for sock in sockets]
  for sock in sockets:
    sock.close()
  return ports


def _start_worker(module, fn_args, cluster, index):
  tf_config = {'cluster': cluster, 'task': {'type': 'worker', 'index': index}}
  return subprocess.Popen(
      [sys.executable, '-c', _WORKER_SCRIPT, module, json.dumps(fn_args)], cwd=REPO_ROOT,
      env={**os.environ, 'TF_CONFIG': json.dumps(tf_config)},
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize('module, saved_file', [
    ('modules.pretrain_trainer', outputs.ENCODER_FILE),
    ('modules.classifier_trainer', outputs.CLASSIFIER_FILE)])
def test_two_workers_train_as_one_and_only_the_chief_writes(transformed, module, saved_file):
  workdir, transform_dir = transformed
  fn_args = trainer_fn_args(workdir, transform_dir, module, epochs=2, steps_per_epoch=5)
  cluster = {'worker': [f'127.0.0.1:{port}' for port in _free_ports(2)]}
  workers = [_start_worker(module, fn_args, cluster, index) for index in range(2)]
  logs = [worker.communicate(timeout=600)[0] for worker in workers]

  for worker, log in zip(workers, logs, strict=True):
    assert worker.returncode == 0, log[-4000:]
    assert 'Training on 2 replica(s) in sync' in log
  # Trained on different halves of each batch: equal weights at the end mean the gradients
  # were all-reduced at every step.
  digests = [re.findall(r'Weights after training: (\w+)', log) for log in logs]
  assert len(digests[0]) == 1 and digests[0] == digests[1]
  # The classifier's blend, fitted by each worker on all of `eval`, is the same on both.
  blends = [re.findall(r'Blend fitted on eval: (.*)', log) for log in logs]
  assert len(blends[0]) == (module == 'modules.classifier_trainer') and blends[0] == blends[1]
  # The chief (worker 0) wrote the model and the training log; the other wrote nothing there.
  assert sorted(os.listdir(fn_args['serving_model_dir'])).count(saved_file) == 1
  stats = json.load(open(os.path.join(fn_args['model_run_dir'], outputs.TRAINING_STATS_FILE)))
  assert len(stats['epochs']) == 2
  assert not os.path.exists(training.backup_dir(FnArgs(**fn_args)))
