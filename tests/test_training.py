"""The training loop's settings of its own (modules/training.py)."""

import os

from modules import training

PLAIN_REDUCTIONS = '--xla_disable_hlo_passes=tree_reduction_rewriter'


def test_plain_xla_reductions_join_the_users_xla_flags(monkeypatch):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  training._use_plain_xla_reductions()
  assert os.environ['XLA_FLAGS'] == PLAIN_REDUCTIONS
  monkeypatch.setenv('XLA_FLAGS', '--xla_dump_to=/tmp/hlo')
  training._use_plain_xla_reductions()
  assert os.environ['XLA_FLAGS'] == f'--xla_dump_to=/tmp/hlo {PLAIN_REDUCTIONS}'


def test_plain_xla_reductions_leave_the_users_own_disabled_passes(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_disable_hlo_passes=algsimp')
  training._use_plain_xla_reductions()
  assert os.environ['XLA_FLAGS'] == '--xla_disable_hlo_passes=algsimp'
