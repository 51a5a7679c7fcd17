"""The console's stderr filter: native log noise and teardown tracebacks out, the rest through."""

import os
import subprocess
import sys

from pipeline import console

_CHILD = r'''
import sys
sys.stderr.write(
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796665325.843698   23483 service.cc:145] XLA service 0x7f initialized\n"
    "Exception ignored in: <function AtomicFunction.__del__ at 0x7f012c8f72e0>\n"
    "Traceback (most recent call last):\n"
    '  File "atomic_function.py", line 291, in __del__\n'
    "TypeError: 'NoneType' object is not subscriptable\n"
    "W0000 00:00:1796665325.1 23483 device.cc:1] a native warning\n"
    "Traceback (most recent call last):\n"
    "ValueError: a real error\n")
'''


def test_a_child_process_and_this_one_keep_only_what_a_user_should_read(capfd):
  with console.quiet_native_stderr():
    subprocess.run([sys.executable, '-c', _CHILD], check=True)
    os.write(2, b'I1207 17:53:30.1 1 cpu_client.cc:467] TfrtCpuClient created.\nerror: from here\n')
  assert capfd.readouterr().err.splitlines() == [
      'W0000 00:00:1796665325.1 23483 device.cc:1] a native warning',
      'Traceback (most recent call last):', 'ValueError: a real error', 'error: from here']


def test_stderr_is_itself_again_after_the_block(capfd):
  with console.quiet_native_stderr():
    pass
  os.write(2, b'I0000 00:00:1.0 1 x.cc:1] after the block\n')
  assert capfd.readouterr().err == 'I0000 00:00:1.0 1 x.cc:1] after the block\n'
