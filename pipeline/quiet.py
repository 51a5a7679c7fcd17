"""Silences start-up noise (TensorFlow's C++ lines, library deprecation notices) unless --verbose.

Call it before anything imports TensorFlow: the C++ log level is read when TensorFlow loads.
"""

import os
import warnings
from typing import List


# Library warnings that ask nothing of a user (Python 3.10's end of support in google-api-core,
# deprecations, TFMA's divisions by zero on one-class slices).
_CATEGORIES = (FutureWarning, DeprecationWarning, UserWarning, RuntimeWarning)


def unless_verbose(argv: List[str]) -> None:
  """Quiets TensorFlow's C++ logging and library warnings when `--verbose` is not in `argv`.

  In this process and in the ones it starts (Beam's worker processes), which read the filters
  from PYTHONWARNINGS.
  """
  if '--verbose' not in argv:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    os.environ.setdefault('PYTHONWARNINGS', ','.join(
        f'ignore::{category.__name__}' for category in _CATEGORIES))
    for category in _CATEGORIES:
      warnings.filterwarnings('ignore', category=category)
