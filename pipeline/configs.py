"""The presets that bundle every knob of a run; the settings' types are in `modules.config`."""

import dataclasses
from typing import Any, Dict, Optional, Tuple

from modules.config import EncoderConfig, TrainingConfig

# Each preset runs as its own pipeline, `imdb-bert-PRESET` (a valid Kubeflow name).
PIPELINE_NAME = 'imdb-bert'


def pipeline_name(preset: str) -> str:
  """The name of the preset's pipeline, the same locally and on Kubeflow."""
  return f'{PIPELINE_NAME}-{preset}'


@dataclasses.dataclass(frozen=True)
class Preset:
  """Every knob of `create_pipeline` except paths."""
  reviews_per_folder: Optional[int]  # None reads the whole corpus.
  eval_percent: int
  sequence_length: int
  vocabulary_size: int
  ngram_buckets: int  # Of the classifier's linear n-gram part; 0 leaves it out.
  encoder: EncoderConfig
  pretraining: TrainingConfig
  fine_tuning: TrainingConfig
  min_accuracy: float  # Evaluator: test accuracy needed for a blessing.
  max_accuracy_drop: float  # Evaluator: allowed accuracy loss against the served model.
  # Evaluator: accuracy a rating or length slice may lose against the served model, for slices
  # of at least `min_slice_examples` test reviews (see `components.evaluator`).
  max_slice_accuracy_drop: float
  min_slice_examples: int
  beam_pipeline_args: Tuple[str, ...]

  def pipeline_args(self) -> Dict[str, Any]:
    """The knobs as keyword arguments of `create_pipeline` (nested configs kept as objects)."""
    return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


_IN_MEMORY_BEAM = ('--direct_running_mode=in_memory',)
# Two worker processes for the two cores; workers import the project as an installed package.
_MULTI_PROCESS_BEAM = ('--direct_running_mode=multi_processing', '--direct_num_workers=0')

PRESETS = {
    # A few hundred reviews and a tiny model: the whole chain in a few minutes.
    'smoke': Preset(
        reviews_per_folder=100,
        eval_percent=20,
        sequence_length=64,
        vocabulary_size=2_000,
        ngram_buckets=2**12,
        encoder=EncoderConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64),
        pretraining=TrainingConfig(steps=40, eval_steps=2, batch_size=16, epochs=2,
                                   learning_rate=1e-3, dropout=0.0),
        fine_tuning=TrainingConfig(steps=100, eval_steps=2, batch_size=16, epochs=2,
                                   learning_rate=3e-3),
        min_accuracy=0.7,
        max_accuracy_drop=0.05,
        # A generated test split holds about 25 reviews per rating.
        max_slice_accuracy_drop=0.1,
        min_slice_examples=20,
        beam_pipeline_args=_IN_MEMORY_BEAM),
    # The full corpus on a 2-core CPU.
    'default': Preset(
        reviews_per_folder=None,
        eval_percent=10,
        sequence_length=256,
        vocabulary_size=20_000,
        ngram_buckets=2**20,
        encoder=EncoderConfig(num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512),
        # No dropout in pretraining, which reads each review little more than once: a faster
        # step, and a fine-tuned encoder as good (bench/README.md).
        pretraining=TrainingConfig(steps=1_500, eval_steps=20, batch_size=64, epochs=5,
                                   learning_rate=1e-3, jit_compile=True, dropout=0.0,
                                   dtype_policy='auto'),
        # 40 batches of 64 cover all of `eval` (2,325 reviews of the full corpus; the first 235
        # are read twice): the best epoch and the blend are chosen on all of it.
        fine_tuning=TrainingConfig(steps=900, eval_steps=40, batch_size=64, epochs=6,
                                   learning_rate=3e-4, jit_compile=True),
        min_accuracy=0.80,
        max_accuracy_drop=0.01,
        # aclImdb's test split holds 2,000 to 5,000 reviews per rating and per length bucket.
        max_slice_accuracy_drop=0.03,
        min_slice_examples=1_000,
        beam_pipeline_args=_MULTI_PROCESS_BEAM),
}
