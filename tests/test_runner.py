"""local_runner.py refuses, in one line, runs it cannot do safely."""

import subprocess
import time

import pytest
from tfx import v1 as tfx

from pipeline import run_lock, summary
from tests.conftest import (REPO_ROOT, SMOKE_PIPELINE as PIPELINE_NAME, smoke_run_command as _command,
                            write_corpus)

pytestmark = pytest.mark.slow  # Pipeline runs in subprocesses.


def test_unwritable_output_directory_is_refused_naming_the_path(small_corpus, tmp_path):
  blocker = tmp_path / 'a-file'
  blocker.write_text('not a directory')
  result = subprocess.run(_command(small_corpus, blocker / 'out'), cwd=REPO_ROOT,
                          capture_output=True, text=True)
  assert result.returncode == 3
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line.startswith(f'error: cannot write to {blocker}'), last_line
  assert 'Traceback' not in result.stderr


def test_a_second_run_on_the_same_root_is_refused_while_the_first_completes(tmp_path):
  corpus = write_corpus(tmp_path, reviews_per_folder=30)
  output_dir = tmp_path / 'out'
  lock_file = output_dir / 'pipelines' / PIPELINE_NAME / run_lock.LOCK_FILE
  first = subprocess.Popen(_command(corpus, output_dir), cwd=REPO_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not (lock_file.exists() and lock_file.read_text()) and time.time() < deadline:
    time.sleep(0.5)
  second = subprocess.run(_command(corpus, output_dir), cwd=REPO_ROOT,
                          capture_output=True, text=True)
  first_stdout, first_stderr = first.communicate(timeout=600)
  assert second.returncode == 3, second.stderr[-2000:]
  assert f'another run (pid {first.pid},' in second.stderr
  assert first.returncode == 0, first_stderr[-3000:]
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(output_dir / 'metadata' / PIPELINE_NAME / 'metadata.db'))
  run = summary.summarize(metadata, PIPELINE_NAME)
  assert {component.state for component in run.components} == {'COMPLETE'}
  assert 'pushed model:' in first_stdout


# local_runner.py with the smoke preset's Beam pipelines in worker processes, as the default
# preset runs them.
_MULTI_PROCESSING_RUNNER = '''
import dataclasses, sys
import local_runner
from pipeline import configs
configs.PRESETS['smoke'] = dataclasses.replace(
    configs.PRESETS['smoke'], beam_pipeline_args=configs.PRESETS['default'].beam_pipeline_args)
sys.exit(local_runner.main())
'''


def test_a_clean_run_in_beam_worker_processes_writes_nothing_to_stderr(tmp_path):
  """No library warning, worker log line or exit traceback: stderr is for what a user must read."""
  corpus = write_corpus(tmp_path, reviews_per_folder=120)
  result = subprocess.run(_command(corpus, tmp_path / 'out', runner=('-c', _MULTI_PROCESSING_RUNNER)),
                          cwd=REPO_ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'pushed model:' in result.stdout
  assert result.stderr.splitlines() == []
