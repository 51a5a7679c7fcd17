"""What Transform and the Trainers receive: the typed contract between `pipeline/` and `modules/`.

`pipeline/` builds a `TransformConfig` or a `TrainerConfig` and hands it to TFX as the
component's `custom_config` (`to_custom_config`, plain JSON). The user code reads it back once,
with `from_custom_config`, which refuses a missing or unknown key by name; from there on it reads
typed fields. Both sides import this module; it lives in `modules/` because Beam's workers and
the Trainers import `modules/` only.
"""

import dataclasses
import typing
from typing import Any, Dict, Mapping, Optional, Type, TypeVar

# Keras dtype policies a Trainer may compute in; 'auto' picks the faster of the others on the
# machine that trains (see `training.dtype_policy`).
DTYPE_POLICIES = ('float32', 'mixed_bfloat16', 'auto')
# The TrainerConfig field that WarmStartTrainer's executor fills in from its input.
WARM_START_MODEL_KEY = 'warm_start_model'
T = TypeVar('T')


class ConfigError(ValueError):
  """A custom_config that does not match its dataclass: a key missing or unknown."""


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """Size of the BERT encoder (keras-hub's BertBackbone)."""
  num_layers: int
  num_heads: int
  hidden_dim: int  # Width of every token's vector; divisible by num_heads.
  intermediate_dim: int  # Width of the feed-forward layer inside each block.


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """One Trainer's schedule: `steps` batches of `batch_size`, validated `epochs` times."""
  steps: int
  eval_steps: int  # Batches of `eval` per validation.
  batch_size: int  # Reviews per step, over all workers.
  epochs: int
  learning_rate: float  # Peak, after the warmup; then a linear decay to 0.
  warmup_fraction: float = 0.1  # Share of the steps that warms the learning rate up from 0.
  weight_decay: float = 0.01  # AdamW's.
  jit_compile: bool = False  # XLA: faster steps on CPU, at a compile of each shape.
  # Seeds the weights this Trainer initializes, its dropout and its shuffling.
  seed: int = 0
  dropout: float = 0.1  # The encoder's dropout while this Trainer trains it.
  head_dropout: float = 0.1  # Dropout before the classifier's output (unused by pretraining).
  # Whether the masked-LM head projects onto the vocabulary with the token embedding, as BERT
  # does (unused by fine-tuning; see `models.build_masked_lm`). Untied measured better here
  # (bench/README.md).
  tie_word_embeddings: bool = False
  # One of DTYPE_POLICIES: what pretraining computes in (fine-tuning computes in float32).
  dtype_policy: str = 'float32'

  def __post_init__(self):
    if self.dtype_policy not in DTYPE_POLICIES:
      raise ConfigError(f'dtype_policy must be one of {", ".join(DTYPE_POLICIES)}, '
                        f'not {self.dtype_policy!r}')


class _CustomConfig:
  """A config dataclass that travels as a component's custom_config (JSON)."""

  def to_custom_config(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_custom_config(cls: Type[T], custom_config: Mapping[str, Any]) -> T:
    """The config from what TFX hands the user code; ConfigError names a wrong key."""
    return parse(cls, custom_config)


@dataclasses.dataclass(frozen=True)
class TransformConfig(_CustomConfig):
  """What `preprocessing.preprocessing_fn` receives."""
  sequence_length: int  # Tokens per review, [CLS] and [SEP] included.
  vocabulary_size: int  # Token ids, the special tokens included.
  ngram_buckets: int  # Hash buckets of the review's n-grams; 0 computes none.
  # A digest of the user code (`pipeline.source_fingerprint`): it makes TFX's cache rerun the
  # component when the code changes. Unused by the code itself.
  source_fingerprint: str = ''


@dataclasses.dataclass(frozen=True)
class TrainerConfig(_CustomConfig):
  """What a Trainer's run function receives in `fn_args.custom_config`."""
  encoder: EncoderConfig
  training: TrainingConfig
  ngram_buckets: int  # Transform's; the classifier's n-gram part reads them (0: no such part).
  # The serving folder of a classifier to continue from (scheduled retraining), filled in by
  # WarmStartTrainer's executor; None trains from the pretrained or a random encoder.
  warm_start_model: Optional[str] = None
  source_fingerprint: str = ''  # As TransformConfig's.


def parse(cls: Type[T], values: Mapping[str, Any], where: str = '') -> T:
  """The dataclass `cls` from the JSON-like `values`, nested dataclasses included.

  Raises:
    ConfigError: naming the first key missing from `values`, or not a field of `cls`.
  """
  fields = {field.name: field for field in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise ConfigError(f'custom_config has an unknown key {where + unknown[0]!r} '
                      f'({cls.__name__} has {", ".join(fields)})')
  required = [name for name, field in fields.items()
              if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
  missing = [name for name in required if name not in values]
  if missing:
    raise ConfigError(f'custom_config lacks the key {where + missing[0]!r} of {cls.__name__}')
  types = typing.get_type_hints(cls)
  return cls(**{name: parse(types[name], value, f'{where}{name}.')
                if dataclasses.is_dataclass(types[name]) else value
                for name, value in values.items()})
