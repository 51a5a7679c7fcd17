"""Training past one machine: workers named by TF_CONFIG train one model together.

Two local processes stand in for the replicas: as a Kubeflow TFJob lays them out (`worker` 0
and 1), and as a Vertex AI Training job starts them (the command of each worker pool that
WarmStartTrainer's Vertex executor builds, with TF_CONFIG `chief` and `worker`). What only a
cloud can show, the job's submission and machines, is left out: its launch is captured.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import google.auth
import pytest
import tensorflow as tf
from google.auth import credentials
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.extensions.google_cloud_ai_platform import runner as vertex_runner
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import json_utils, path_utils, proto_utils

from components.warm_start_trainer import VertexTraining
from components.warm_start_trainer.component import Executor, VertexExecutor
from modules import outputs, serving, training
from tests.conftest import REPO_ROOT, trainer_fn_args, wait_for_backup_epoch

pytestmark = pytest.mark.slow  # Two training processes per test.
# TF_CONFIG task of each replica of a Vertex AI Training job: worker pool 0, then pool 1.
VERTEX_TASKS = (('chief', 0), ('worker', 0))

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


def _start(command, cluster, task_type, index, **env):
  """Starts `command` as the replica (`task_type`, `index`) of `cluster`."""
  tf_config = {'cluster': cluster, 'task': {'type': task_type, 'index': index}}
  return subprocess.Popen(command, cwd=REPO_ROOT,
                          env={**os.environ, 'TF_CONFIG': json.dumps(tf_config), **env},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _start_worker(module, fn_args, cluster, index, task_type='worker'):
  return _start([sys.executable, '-c', _WORKER_SCRIPT, module, json.dumps(fn_args)],
                cluster, task_type, index)


def _finish_in_sync(replicas):
  """The replicas' logs, once each has ended, asserting that all trained as one and succeeded."""
  logs = [replica.communicate(timeout=600)[0] for replica in replicas]
  for replica, log in zip(replicas, logs, strict=True):
    assert replica.returncode == 0, log[-4000:]
    assert f'Training on {len(replicas)} replica(s) in sync' in log
  return logs


def _logged_alike(logs, pattern):
  """What the replicas logged matching `pattern`, asserting that it is the same on each."""
  found = [re.findall(pattern, log) for log in logs]
  assert all(matches == found[0] for matches in found), found
  return found[0]


def _vertex_cluster():
  """A TF_CONFIG cluster as Vertex AI lays out a job of two replicas."""
  chief, worker = (f'127.0.0.1:{port}' for port in _free_ports(2))
  return {'chief': [chief], 'worker': [worker]}


@pytest.mark.parametrize('module, saved_file', [
    ('modules.pretrain_trainer', outputs.ENCODER_FILE),
    ('modules.classifier_trainer', outputs.CLASSIFIER_FILE)])
def test_two_workers_train_as_one_and_only_the_chief_writes(transformed, module, saved_file):
  workdir, transform_dir = transformed
  fn_args = trainer_fn_args(workdir, transform_dir, module, epochs=2, steps_per_epoch=5)
  cluster = {'worker': [f'127.0.0.1:{port}' for port in _free_ports(2)]}
  logs = _finish_in_sync([_start_worker(module, fn_args, cluster, index) for index in range(2)])

  # Trained on different halves of each batch: equal weights at the end mean the gradients
  # were all-reduced at every step.
  assert len(_logged_alike(logs, r'Weights after training: (\w+)')) == 1
  # The classifier's blend, fitted by each worker on all of `eval`, is the same on both.
  assert len(_logged_alike(logs, r'Blend fitted on eval: (.*)')) == (
      module == 'modules.classifier_trainer')
  # The chief (worker 0) wrote the model and the training log; the other wrote nothing there.
  assert sorted(os.listdir(fn_args['serving_model_dir'])).count(saved_file) == 1
  stats = json.load(open(os.path.join(fn_args['model_run_dir'], outputs.TRAINING_STATS_FILE)))
  assert len(stats['epochs']) == 2
  assert not os.path.exists(training.backup_dir(FnArgs(**fn_args)))


def _examples(tmp_path, workdir):
  """The `transformed` fixture's records as a Transform output artifact (splits train, eval)."""
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'transformed_examples')
  examples.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  for split in ('train', 'eval'):
    os.makedirs(os.path.join(examples.uri, f'Split-{split}'))
    shutil.copy(workdir / f'{split}.gz', os.path.join(examples.uri, f'Split-{split}', f'{split}.gz'))
  return examples


def test_a_vertex_job_of_two_replicas_trains_the_classifier_and_only_the_chief_exports(
    transformed, tmp_path, monkeypatch):
  workdir, transform_dir = transformed
  graph, model, model_run = (standard_artifacts.TransformGraph(), standard_artifacts.Model(),
                             standard_artifacts.ModelRun())
  graph.uri, model.uri, model_run.uri = transform_dir, str(tmp_path / 'model'), str(tmp_path / 'run')
  vertex = VertexTraining(project='a-project', region='us-central1', image='imdb-bert-tfx:test',
                          replicas=2)
  trainer_config = trainer_fn_args(workdir, transform_dir, 'vertex', epochs=2,
                                   steps_per_epoch=5)['custom_config']
  launched = []
  # The real job client, with no credentials to call Google Cloud with: the launch is captured.
  monkeypatch.setattr(google.auth, 'default',
                      lambda *args, **kwargs: (credentials.AnonymousCredentials(), 'a-project'))
  monkeypatch.setattr(vertex_runner, '_launch_cloud_training', lambda **job: launched.append(job))

  # The Trainer's task: the Vertex executor builds the CustomJob (its launch is captured).
  VertexExecutor().Do(
      {'examples': [_examples(tmp_path, workdir)], 'transform_graph': [graph]},
      {'model': [model], 'model_run': [model_run]},
      {'run_fn': 'modules.classifier_trainer.run_fn',
       'train_args': proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=['train'], num_steps=10)),
       'eval_args': proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=['eval'], num_steps=1)),
       'custom_config': json_utils.dumps({**trainer_config, **vertex.custom_config()})})

  (job,) = launched
  assert (job['project'], job['vertex_region'], job['enable_vertex']) == ('a-project', 'us-central1', True)
  spec = job['training_job']['job_spec']
  assert spec['scheduling'] == {'restart_job_on_worker_restart': True}
  pools = spec['worker_pool_specs']
  assert [pool['replica_count'] for pool in pools] == [1, 1]
  assert {pool['container_spec']['image_uri'] for pool in pools} == {'imdb-bert-tfx:test'}
  command = pools[0]['container_spec']['command']
  assert command == pools[1]['container_spec']['command']
  assert command[:3] == ['python', '-m', 'tfx.scripts.run_executor']
  assert command[command.index('--executor_class_path') + 1] == (
      f'{Executor.__module__}.{Executor.__name__}')

  # Each replica as Vertex AI starts it: the pool's command in the image, its own TF_CONFIG.
  cluster = _vertex_cluster()
  scratch = [tmp_path / f'tmp-{task}' for task, _ in VERTEX_TASKS]
  for folder in scratch:
    folder.mkdir()
  # Both finish: the run function, whose config refuses unknown keys, never saw the job's.
  logs = _finish_in_sync([
      _start([sys.executable, *command[1:]], cluster, task, index, TMPDIR=str(folder))
      for (task, index), folder in zip(VERTEX_TASKS, scratch, strict=True)])
  assert len(_logged_alike(logs, r'Blend fitted on eval: (.*)')) == 1
  # The chief exported the serving model into the Model artifact; it scores raw reviews.
  export = path_utils.serving_model_path(model.uri)
  assert os.path.isfile(os.path.join(export, outputs.CLASSIFIER_FILE))
  scores = tf.saved_model.load(export).signatures[serving.PREDICT_TEXT](
      text=tf.constant(['a wonderful, moving film', 'dull and far too long']))
  assert scores[serving.PROBABILITY_KEY].shape == [2]
  assert os.path.isfile(os.path.join(model_run.uri, outputs.TRAINING_STATS_FILE))
  # The worker saved into a folder of its own, since deleted: none is left in its TMPDIR.
  assert not list(scratch[1].glob('non-chief-*'))


def test_two_replicas_killed_mid_epoch_resume_from_the_chiefs_last_backup(transformed):
  workdir, transform_dir = transformed
  epochs = 4
  fn_args = trainer_fn_args(workdir, transform_dir, 'preempted', epochs=epochs, steps_per_epoch=60)
  progress = os.path.join(training.backup_dir(FnArgs(**fn_args)), training.BACKUP_PROGRESS_FILE)
  cluster = _vertex_cluster()

  def start_job():
    return [_start_worker('modules.pretrain_trainer', fn_args, cluster, index, task)
            for task, index in VERTEX_TASKS]

  first = start_job()
  wait_for_backup_epoch(progress, 1, first[0])
  # The worker is preempted; Vertex AI then restarts the whole job (restart_job_on_worker_restart).
  for replica in reversed(first):
    replica.send_signal(signal.SIGKILL)
    replica.wait()
  resumed_from = json.load(open(progress))['epoch']

  logs = _finish_in_sync(start_job())  # The same command and outputs, as a restarted job has.
  assert all(f'after epoch {resumed_from}' in log for log in logs)
  assert len(_logged_alike(logs, r'Weights after training: (\w+)')) == 1
  stats = json.load(open(os.path.join(fn_args['model_run_dir'], outputs.TRAINING_STATS_FILE)))
  assert stats['first_epoch'] == resumed_from >= 1
  assert len(stats['epochs']) == epochs - resumed_from
  assert os.path.isfile(os.path.join(fn_args['serving_model_dir'], outputs.ENCODER_FILE))
  assert not os.path.exists(os.path.dirname(progress))  # Deleted once training finished.
