"""The typed contract between pipeline/ and the user code: what custom_config parses into."""

import json

import pytest
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import config, pretrain_trainer
from pipeline import configs


def _trainer_config() -> config.TrainerConfig:
  smoke = configs.PRESETS['smoke']
  return config.TrainerConfig(encoder=smoke.encoder, training=smoke.fine_tuning,
                              ngram_buckets=smoke.ngram_buckets, source_fingerprint='abc')


def test_a_trainer_config_comes_back_whole_through_tfx_json():
  settings = _trainer_config()
  parsed = config.TrainerConfig.from_custom_config(json.loads(json.dumps(settings.to_custom_config())))
  assert parsed == settings
  assert isinstance(parsed.training, config.TrainingConfig)


@pytest.mark.parametrize('path, message', [
    (('encoder', 'num_heads'), "lacks the key 'encoder.num_heads' of EncoderConfig"),
    (('ngram_buckets',), "lacks the key 'ngram_buckets' of TrainerConfig"),
])
def test_a_missing_key_is_named(path, message):
  values = _trainer_config().to_custom_config()
  holder = values if len(path) == 1 else values[path[0]]
  del holder[path[-1]]
  with pytest.raises(config.ConfigError, match=message):
    config.TrainerConfig.from_custom_config(values)


def test_an_unknown_key_is_named_with_the_ones_that_exist():
  values = _trainer_config().to_custom_config()
  values['training']['dropuot'] = 0.2
  with pytest.raises(config.ConfigError,
                     match=r"unknown key 'training.dropuot' \(TrainingConfig has steps, "):
    config.TrainerConfig.from_custom_config(values)


def test_a_run_function_refuses_a_config_it_cannot_read_before_training(tmp_path):
  values = _trainer_config().to_custom_config()
  values['batch_size'] = values['training'].pop('batch_size')  # The old, flat layout.
  with pytest.raises(config.ConfigError, match="unknown key 'batch_size'"):
    pretrain_trainer.run_fn(FnArgs(custom_config=values, transform_output=str(tmp_path),
                                   serving_model_dir=str(tmp_path / 'model')))
  assert not (tmp_path / 'model').exists()


def test_a_transform_config_parses_what_the_pipeline_writes_and_refuses_a_typo():
  values = config.TransformConfig(sequence_length=64, vocabulary_size=2_000,
                                  ngram_buckets=16).to_custom_config()
  assert config.TransformConfig.from_custom_config(values).ngram_buckets == 16
  with pytest.raises(config.ConfigError, match="unknown key 'vocab_size'"):
    config.TransformConfig.from_custom_config({**values, 'vocab_size': 10})
