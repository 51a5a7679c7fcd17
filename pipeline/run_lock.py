"""One run at a time per pipeline root: a second run started beside it refuses, naming the first."""

import contextlib
import datetime
import fcntl
import os
from typing import Iterator

LOCK_FILE = '.run.lock'


class RunRefusedError(RuntimeError):
  """The run cannot start: another run holds the pipeline root, or it cannot be written."""


@contextlib.contextmanager
def exclusive_run(pipeline_root: str) -> Iterator[None]:
  """Holds the pipeline root for this process until the block ends.

  The operating system drops the lock when the process ends, however it ends, so a killed
  run never blocks the next one.

  Raises:
    RunRefusedError: another process holds the root, or the root cannot be written.
  """
  try:
    os.makedirs(pipeline_root, exist_ok=True)
    lock = open(os.path.join(pipeline_root, LOCK_FILE), 'a+')
  except OSError as error:
    raise RunRefusedError(f'cannot write to {error.filename or pipeline_root}: '
                          f'{error.strerror}') from None
  with lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      raise RunRefusedError(
          f'another run ({lock.read().strip() or "unknown process"}) is using {pipeline_root}; '
          'wait for it to end, or pass another --output-dir') from None
    lock.truncate(0)
    lock.write(f'pid {os.getpid()}, started {datetime.datetime.now():%Y-%m-%d %H:%M:%S}')
    lock.flush()
    yield
