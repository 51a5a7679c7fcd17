"""The training loop's settings of its own (modules/training.py)."""

import dataclasses
import os

import pytest

from modules import training
from pipeline import configs

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


def _cpuinfo(tmp_path, flags: str) -> str:
  path = tmp_path / 'cpuinfo'
  path.write_text(f'processor\t: 0\nmodel name\t: A CPU\nflags\t\t: fpu sse2 {flags}\n\n'
                  f'processor\t: 1\nflags\t\t: fpu sse2 {flags}\n')
  return str(path)


def test_auto_dtype_policy_computes_in_bfloat16_only_on_a_cpu_with_amx(tmp_path):
  assert training.dtype_policy('auto', _cpuinfo(tmp_path, 'avx512f amx_bf16 amx_tile')) == 'mixed_bfloat16'
  assert training.dtype_policy('auto', _cpuinfo(tmp_path, 'avx512f avx512_bf16')) == 'float32'
  assert training.dtype_policy('auto', str(tmp_path / 'no-such-file')) == 'float32'


def test_a_dtype_policy_named_is_used_whatever_the_cpu(tmp_path):
  amx = _cpuinfo(tmp_path, 'amx_bf16')
  assert training.dtype_policy('float32', amx) == 'float32'
  assert training.dtype_policy('mixed_bfloat16', str(tmp_path / 'no-such-file')) == 'mixed_bfloat16'


def test_a_dtype_policy_keras_does_not_know_is_refused_when_the_preset_is_written():
  with pytest.raises(ValueError,
                     match="dtype_policy must be one of float32, mixed_bfloat16, auto, not 'bf16'"):
    dataclasses.replace(configs.PRESETS['default'].pretraining, dtype_policy='bf16')
