"""Silences start-up noise (TensorFlow's C++ lines, library deprecation notices) unless --verbose.

Call it before anything imports TensorFlow: the C++ log level is read when TensorFlow loads.
"""

import os
import warnings
from typing import List


def unless_verbose(argv: List[str]) -> None:
  """Quiets TensorFlow's C++ logging and library warnings when `--verbose` is not in `argv`."""
  if '--verbose' not in argv:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    for category in (FutureWarning, DeprecationWarning, UserWarning, RuntimeWarning):
      warnings.filterwarnings('ignore', category=category)
