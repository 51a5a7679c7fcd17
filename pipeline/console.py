"""What a user sees in the terminal: progress lines, log levels and one-line errors.

Progress is read from ML Metadata while the run goes on: the orchestrator records each execution
(RUNNING, then COMPLETE, CACHED or FAILED) and its output artifacts there, and a thread beside the
run reads them, so no component needs to know.
"""

import contextlib
import datetime
import json
import logging
import os
import re
import sys
import threading
import traceback
from typing import Callable, Dict, Iterator, Optional, Set, TextIO, Tuple, Type

import ml_metadata as mlmd
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging as absl_logging
from ml_metadata.proto import metadata_store_pb2

from components.imdb_example_gen import executor as example_gen_executor
from components.latest_pushed_model import component as latest_pushed_model
from modules import features, outputs
from pipeline import summary


class UserError(Exception):
  """An error whose message says all a user needs: printed alone, without a traceback."""


_RUNNING = metadata_store_pb2.Execution.RUNNING
_ENDED = {metadata_store_pb2.Execution.COMPLETE: 'done', metadata_store_pb2.Execution.CACHED: 'cached',
          metadata_store_pb2.Execution.FAILED: 'FAILED', metadata_store_pb2.Execution.CANCELED: 'canceled'}


def key_output(type_name: str, artifact: metadata_store_pb2.Artifact) -> Optional[str]:
  """What a user wants to know of an output artifact, in a few words; None for the rest."""
  properties = artifact.custom_properties
  if type_name == 'Examples' and 'num_skipped' in properties:
    return ', '.join(f'{name} {properties[f"num_{name}"].int_value:,}'
                     for name in example_gen_executor.REPORTED_COUNTS)
  if type_name == 'TransformGraph':
    size = tft.TFTransformOutput(artifact.uri).vocabulary_size_by_name(features.VOCABULARY_NAME)
    return f'vocabulary {size:,} tokens'
  if type_name == 'ModelRun':
    stats_path = os.path.join(artifact.uri, outputs.TRAINING_STATS_FILE)
    if os.path.exists(stats_path):
      with open(stats_path) as stats_file:
        last_epoch = json.load(stats_file)['epochs'][-1]
      return 'final ' + ', '.join(f'{name} {value:.4f}' for name, value in sorted(last_epoch.items())
                                  if 'loss' in name or 'accuracy' in name)
  if type_name == 'Model' and latest_pushed_model.PUSHED_DESTINATION_PROPERTY in properties:
    return f'served {properties[latest_pushed_model.PUSHED_DESTINATION_PROPERTY].string_value}'
  if type_name == 'ModelEvaluation':
    return ', '.join(f'test {name} {value:.4f}'
                     for name, value in summary.candidate_metrics(artifact.uri).items()
                     if name in ('binary_accuracy', 'auc'))
  if type_name == 'ModelBlessing':
    return 'blessed' if properties['blessed'].int_value == 1 else 'NOT blessed'
  if type_name == 'PushedModel':
    return (f'pushed {properties["pushed_destination"].string_value}'
            if properties['pushed'].int_value == 1 else 'nothing pushed')
  return None


class ProgressPrinter:
  """Prints the progress of the next run of a pipeline while the `with` block runs it.

  Args:
    connection_config: The ML Metadata store the run records into.
    pipeline_name: The pipeline whose next run to follow.
    stream: Where the lines go.
    interval: Seconds between two reads of the store.
  """

  def __init__(self, connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
               stream: TextIO = sys.stdout, interval: float = 0.5):
    self._config = connection_config
    self._pipeline_name = pipeline_name
    self._stream = stream
    self._interval = interval
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._follow, daemon=True)
    self._earlier_runs: Optional[Set[int]] = None
    self._printed: Dict[int, Set[str]] = {}  # Execution id → 'start' and/or 'end'.

  def __enter__(self) -> 'ProgressPrinter':
    self._earlier_runs = self._run_ids(self._store()) if self._store_exists() else set()
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stop.set()
    self._thread.join()
    self._poll()  # What ended after the thread's last read.

  def _store_exists(self) -> bool:
    return os.path.exists(self._config.sqlite.filename_uri)

  def _store(self) -> mlmd.MetadataStore:
    return mlmd.MetadataStore(self._config)

  def _run_ids(self, store: mlmd.MetadataStore) -> Set[int]:
    return {context.id for context in summary.pipeline_runs(store, self._pipeline_name)}

  def _follow(self) -> None:
    while not self._stop.wait(self._interval):
      self._poll()

  def _poll(self) -> None:
    if not self._store_exists():
      return
    try:
      store = self._store()
      new_runs = self._run_ids(store) - self._earlier_runs
      for run_id in sorted(new_runs):
        for execution in sorted(store.get_executions_by_context(run_id), key=lambda e: e.id):
          self._report(store, execution)
    except Exception:  # pylint: disable=broad-except
      return  # The store is being written; read it again next time.

  def _report(self, store: mlmd.MetadataStore, execution: metadata_store_pb2.Execution) -> None:
    printed = self._printed.setdefault(execution.id, set())
    component_id = summary.component_id(store, execution.id)
    state = execution.last_known_state
    if state == _RUNNING and 'start' not in printed:
      self._print(f'{component_id:<30} started')
      printed.add('start')
    elif state in _ENDED and 'end' not in printed:
      outputs = [key_output(type_name, artifact)
                 for type_name, artifact in summary.typed_outputs(store, execution.id)]
      details = '; '.join(output for output in outputs if output)
      seconds = summary.execution_seconds(execution)
      self._print(f'{component_id:<30} {_ENDED[state]} in {seconds:.1f} s'
                  + (f': {details}' if details else ''))
      printed.update(('start', 'end'))

  def _print(self, line: str) -> None:
    clock = datetime.datetime.now().strftime('%H:%M:%S')
    print(f'[{clock}] {line}', file=self._stream, flush=True)


def set_log_level(verbose: bool) -> None:
  """TFX, Beam, absl and TensorFlow logs at INFO when `verbose`, else only warnings and errors.

  Without `verbose`, TensorFlow's deprecation notices and the warnings known to be harmless
  here are dropped too.
  """
  level = logging.INFO if verbose else logging.WARNING
  logging.getLogger().setLevel(level)
  absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
  # TensorFlow's own warnings are deprecation notices about library code.
  tf.get_logger().setLevel(logging.INFO if verbose else logging.ERROR)
  # Beam's job service relays each worker process's log lines; warnings among them are about
  # the worker's setup (no python-snappy, unparsed pipeline args), errors come at ERROR.
  logging.getLogger(_BEAM_WORKER_LOGGER).setLevel(level if verbose else logging.ERROR)
  if not verbose:
    for handler in logging.getLogger().handlers + [absl_logging.get_absl_handler()]:
      handler.addFilter(_drop_harmless_warnings)
    sys.unraisablehook = _drop_teardown_errors


_BEAM_WORKER_LOGGER = 'apache_beam.runners.portability.local_job_service'
# Warnings that every run logs and that ask nothing of the user.
_HARMLESS_WARNINGS = (
    "Couldn't find python-snappy",  # Beam's CRC in pure Python: fast enough (bench/README.md).
    'does not have payload_format custom property',  # Examples default to tf.Example.
    'ArtifactQuery.property_predicate is not supported',  # TFX's input resolution, per input.
    'Tables initialized inside a tf.function',  # tf.Transform's vocabulary lookup, per call.
)


# Lines that native code writes to file descriptor 2, past Python's logging: absl's notice that
# it was never initialized and its INFO lines (XLA's compiler announcing itself), which
# TF_CPP_MIN_LOG_LEVEL does not reach.
_NATIVE_NOISE = re.compile(rb'^(WARNING: All log messages before absl::InitializeLog\(\) is called '
                           rb'are written to STDERR|I\d{4} [\d:. ]+\d+ \S+:\d+\] .*)$')
# The four lines Python prints when TensorFlow's AtomicFunction.__del__ fails at interpreter
# exit (see `_drop_teardown_errors`), in a process whose hook this module does not set: Beam's
# worker processes.
_TEARDOWN_FIRST = b'Exception ignored in: <function AtomicFunction.__del__'
_TEARDOWN_LAST = b"TypeError: 'NoneType' object is not subscriptable"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
  """While the block runs, drops native log noise from file descriptor 2.

  It covers this process and the ones it starts (Beam's worker processes inherit the
  descriptor): a thread reads what they write there and passes every line on to the real
  stderr but `_NATIVE_NOISE` and TensorFlow's teardown tracebacks.
  """
  sys.stderr.flush()
  real_stderr = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)
  forwarder = threading.Thread(target=_forward_lines, args=(read_end, real_stderr), daemon=True)
  forwarder.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(real_stderr, 2)  # Closes this process's end of the pipe: the forwarder reads to EOF.
    forwarder.join(timeout=10)
    os.close(real_stderr)


def _forward_lines(read_end: int, real_stderr: int) -> None:
  """Copies lines from `read_end` to `real_stderr`, but native noise and teardown tracebacks."""
  in_teardown = False
  with os.fdopen(read_end, 'rb', buffering=0) as pipe:
    for line in iter(pipe.readline, b''):
      content = line.rstrip(b'\n')
      if content.startswith(_TEARDOWN_FIRST):
        in_teardown = True
      if not in_teardown and not _NATIVE_NOISE.match(content):
        os.write(real_stderr, line)
      if in_teardown and content == _TEARDOWN_LAST:
        in_teardown = False


def _drop_teardown_errors(unraisable) -> None:
  """Drops what TensorFlow's functions raise when Python tears their module down at exit.

  For this process, after `quiet_native_stderr` has ended.

  A function loaded from a SavedModel that lives until the interpreter exits decrements a
  reference count in a module dictionary that the teardown has already emptied (TypeError in
  `AtomicFunction.__del__`): a traceback after the run's end that asks nothing of the user.
  Anything else goes to Python's own hook.
  """
  if not (sys.is_finalizing() and isinstance(unraisable.exc_value, TypeError)
          and getattr(unraisable.object, '__qualname__', '') == 'AtomicFunction.__del__'):
    sys.__unraisablehook__(unraisable)


def _drop_harmless_warnings(record: logging.LogRecord) -> bool:
  return not any(text in record.getMessage() for text in _HARMLESS_WARNINGS)


def exit_status(command: Callable[[], int], verbose: bool,
                user_errors: Tuple[Type[Exception], ...] = ()) -> int:
  """Runs `command`; an unexpected error becomes one line on stderr (the traceback if `verbose`).

  Args:
    command: What to run; returns the exit status.
    verbose: Print the traceback of an error too.
    user_errors: Exception types that, like UserError, carry a message that says all a user
      needs (from code that cannot import this module, such as `modules/`).

  Returns:
    The command's exit status, or 1 when it raised.
  """
  try:
    return command()
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    return 130
  except (UserError, *user_errors) as error:
    if verbose:
      traceback.print_exc()
    print(f'error: {error}', file=sys.stderr)
    return 1
  except Exception as error:  # pylint: disable=broad-except
    if verbose:
      traceback.print_exc()
    lines = str(error).strip().splitlines()
    what = f'{type(error).__name__}: {lines[0]}' if lines else type(error).__name__
    print(f'error: {what}' + ('' if verbose else ' (--verbose shows the traceback)'),
          file=sys.stderr)
    return 1
