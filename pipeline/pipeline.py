"""The pipeline factory: raw aclImdb reviews in, a blessed, pushed sentiment SavedModel out.

Read top to bottom, this is the data's way through the pipeline.
"""

import ast
import hashlib
import importlib.util
import os
from typing import Any, Dict, Optional, Sequence

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import pipeline_pb2

from components.atomic_pusher import AtomicPusher
from components.data_gate import DataGate
# What a run that the data gate stopped raises: runners catch it from here.
from components.data_gate import DataAnomaliesError as DataAnomaliesError
from components.evaluator import Evaluator, SliceGate
from components.imdb_example_gen import ImdbExampleGen
from components.latest_pushed_model import LatestPushedModel
from components.warm_start_trainer import WarmStartTrainer
# How runners ask for multi-replica Trainers: they take it from here.
from components.warm_start_trainer import VertexTraining as VertexTraining
from modules import features
from modules.config import EncoderConfig, TrainerConfig, TrainingConfig, TransformConfig

# Module paths of the user code in `modules/`, imported by the workers from the installed package.
PREPROCESSING_FN = 'modules.preprocessing.preprocessing_fn'
PRETRAIN_RUN_FN = 'modules.pretrain_trainer.run_fn'
CLASSIFIER_RUN_FN = 'modules.classifier_trainer.run_fn'
# Splits: vocabulary and masking are learned on train+unsup; `test` is read by the Evaluator only.
ANALYZE_SPLITS = ['train', 'unsup']
PRETRAIN_SPLITS = ['train', 'unsup']
TRAIN_SPLIT, EVAL_SPLIT, TEST_SPLIT = 'train', 'eval', 'test'
# The node that reads the push destination. Its output depends on files that its inputs do not
# describe, so every orchestrator must run it on every run, never from cache.
SERVED_MODEL_ID = 'LatestPushedModel'
ALWAYS_RUN = (SERVED_MODEL_ID,)
# The Evaluator's slices: each star rating and each review-length bucket.
SLICE_FEATURES = (features.RATING_KEY, features.LENGTH_BUCKET_KEY)
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'schema', 'schema.pbtxt')


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    corpus_path: str,
    serving_model_dir: str,
    eval_percent: int,
    reviews_per_folder: Optional[int],
    sequence_length: int,
    vocabulary_size: int,
    ngram_buckets: int,
    encoder: EncoderConfig,
    pretraining: TrainingConfig,
    fine_tuning: TrainingConfig,
    min_accuracy: float,
    max_accuracy_drop: float,
    max_slice_accuracy_drop: float,
    min_slice_examples: int,
    pretrain_encoder: bool = True,
    span_window: Optional[int] = None,
    vertex_training: Optional[VertexTraining] = None,
    schema_path: str = SCHEMA_PATH,
    beam_pipeline_args: Sequence[str] = (),
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
  """Builds the IMDB BERT pipeline.

  Args:
    pipeline_name: Name of the pipeline (lower case, digits and '-' for Kubeflow).
    pipeline_root: Where artifacts are written.
    corpus_path: The aclImdb `.tar.gz` or its extracted `aclImdb/` folder.
    serving_model_dir: Where the Pusher writes versioned SavedModels.
    eval_percent: Share of aclImdb train held out as `eval` for model selection.
    reviews_per_folder: Read only this many reviews per aclImdb folder; None for all.
    sequence_length: Tokens per review, [CLS] and [SEP] included.
    vocabulary_size: Token ids, the five special tokens included.
    ngram_buckets: Hash buckets of the unigrams and bigrams that the classifier's linear part
      weighs beside the encoder; 0 leaves that part out (a BERT-only classifier).
    encoder: Size of the BERT encoder.
    pretraining: The masked-LM Trainer's schedule.
    fine_tuning: The classifier Trainer's schedule.
    min_accuracy: Test accuracy a candidate needs to be blessed.
    max_accuracy_drop: Accuracy a candidate may lose against the served model.
    max_slice_accuracy_drop: Accuracy a candidate may lose against the served model on any
      rating or review-length slice of at least `min_slice_examples` test reviews.
    min_slice_examples: The smallest slice that the slice gate judges.
    pretrain_encoder: Pretrain the encoder with MLM; False fine-tunes a random encoder
      (the ablation that shows what pretraining earns).
    span_window: None: `corpus_path` is one corpus. N: `corpus_path` holds drops `span-K/`
      (scheduled retraining); each run trains on the newest N, is tested on the newest one,
      is checked for skew against the previous run's newest one, and fine-tunes from the
      served classifier when there is one (and then skips pretraining, whose encoder would go
      unused).
    vertex_training: None: each Trainer trains in its own task (one machine). Given: both
      Trainers train as Vertex AI Training jobs of its replicas, which their tasks start and
      wait for (Vertex AI Pipelines, or any orchestrator whose tasks may call Google Cloud).
    schema_path: The curated schema that ExampleValidator checks the data against.
    beam_pipeline_args: Arguments of the Beam pipelines (runner, workers).
    metadata_connection_config: ML Metadata store; None lets the runner choose.
    enable_cache: Reuse the outputs of components whose inputs did not change.

  Returns:
    The pipeline, for `LocalDagRunner` (through `compile_for_local`) or `KubeflowV2DagRunner`.
    Its only executors are containers (no resolvers), so open-source Kubeflow Pipelines runs
    it as Vertex AI Pipelines does. What TFX's resolvers would find in ML Metadata is read
    from files instead: the served model from the push destination, the previous run's
    statistics from `statistics_record(pipeline_root)`.
  """
  # Reviews → tf.Examples in train/eval/test/unsup; unreadable files are counted, not fatal.
  example_gen = ImdbExampleGen(
      corpus_path=corpus_path, eval_percent=eval_percent, reviews_per_folder=reviews_per_folder,
      span_window=span_window)

  # Data guards: statistics per split, the curated schema, anomalies of each split against it.
  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs['examples'])
  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'])
  # Any anomaly, or (retraining) a large skew from the statistics the previous run checked,
  # fails the run here, naming span, split and feature: nothing trains on bad data.
  data_gate = DataGate(
      anomalies=example_validator.outputs['anomalies'],
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'],
      statistics_record=statistics_record(pipeline_root) if span_window else None)

  # Standardized text → vocabulary → token ids, BERT masking and hashed n-grams, in one graph
  # that serving reuses. Its statistics are off: the data gate reads StatisticsGen's.
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=PREPROCESSING_FN,
      splits_config=tfx.proto.SplitsConfig(
          analyze=ANALYZE_SPLITS, transform=PRETRAIN_SPLITS + [EVAL_SPLIT]),
      custom_config=TransformConfig(
          sequence_length=sequence_length, vocabulary_size=vocabulary_size,
          ngram_buckets=ngram_buckets,
          source_fingerprint=source_fingerprint(PREPROCESSING_FN)).to_custom_config(),
      disable_statistics=True)
  transform.add_upstream_node(data_gate)

  # The served classifier, read from the push destination (empty before the first push): the
  # baseline a candidate must not fall behind, and the start of fine-tuning when retraining.
  served_model = LatestPushedModel(serving_model_dir=serving_model_dir).with_id(SERVED_MODEL_ID)

  # Masked-LM pretraining of the encoder on all in-domain text (train + unsup). Retraining that
  # continues from a blessed classifier skips it: that classifier holds its own encoder.
  pretrain_trainer = WarmStartTrainer(
      run_fn=PRETRAIN_RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      warm_start_model=served_model.outputs['model'] if span_window else None,
      train_args=tfx.proto.TrainArgs(splits=PRETRAIN_SPLITS, num_steps=pretraining.steps),
      eval_args=tfx.proto.EvalArgs(splits=[EVAL_SPLIT], num_steps=pretraining.eval_steps),
      custom_config=_trainer_config(PRETRAIN_RUN_FN, encoder, pretraining, ngram_buckets),
      vertex_training=vertex_training,
  ).with_id('PretrainTrainer') if pretrain_encoder else None

  # Fine-tuning of the pretrained encoder into the sentiment classifier that gets served, with a
  # linear model of the review's n-grams beside it, blended by weights fitted on `eval`.
  classifier_trainer = WarmStartTrainer(
      run_fn=CLASSIFIER_RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      base_model=pretrain_trainer.outputs['model'] if pretrain_trainer else None,
      warm_start_model=served_model.outputs['model'] if span_window else None,
      train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT], num_steps=fine_tuning.steps),
      eval_args=tfx.proto.EvalArgs(splits=[EVAL_SPLIT], num_steps=fine_tuning.eval_steps),
      custom_config=_trainer_config(CLASSIFIER_RUN_FN, encoder, fine_tuning, ngram_buckets),
      vertex_training=vertex_training,
  ).with_id('ClassifierTrainer')

  # The gate: metrics on the held-out test split, thresholds on accuracy and against the baseline,
  # overall and on each large enough rating and review-length slice.
  evaluator = Evaluator(
      examples=example_gen.outputs['examples'],
      model=classifier_trainer.outputs['model'],
      baseline_model=served_model.outputs['model'],
      example_splits=[TEST_SPLIT],
      eval_config=eval_config(min_accuracy, max_accuracy_drop),
      slice_gate=SliceGate(features=SLICE_FEATURES, max_accuracy_drop=max_slice_accuracy_drop,
                           min_examples=min_slice_examples))

  # A new versioned SavedModel for serving, only when blessed; it appears whole or not at all.
  pusher = AtomicPusher(
      model=classifier_trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)),
  ).with_id('Pusher')

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[component for component in (
          example_gen, statistics_gen, schema_gen, example_validator, data_gate, transform,
          served_model, pretrain_trainer, classifier_trainer, evaluator, pusher) if component],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))


def statistics_record(pipeline_root: str) -> str:
  """The file in which the data gate records the statistics each retraining run checked."""
  return os.path.join(pipeline_root, 'checked_statistics.json')


def compile_for_local(pipeline: tfx.dsl.Pipeline) -> pipeline_pb2.Pipeline:
  """The pipeline's IR for `LocalDagRunner.run_with_ir`, with the ALWAYS_RUN nodes uncached.

  TFX sets one caching option for all nodes; this turns it off for those whose output depends
  on more than their inputs, as `kubeflow_runner.py` does in the KFP spec.
  """
  ir = compiler.Compiler().compile(pipeline)
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in ALWAYS_RUN:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
  return ir


def eval_config(min_accuracy: float, max_accuracy_drop: float) -> tfma.EvalConfig:
  """TFMA settings: the classifier's `serving_default` probabilities against `label`."""
  accuracy_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': min_accuracy}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -max_accuracy_drop}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name='serving_default', label_key=features.LABEL_KEY,
          prediction_key='probability',
          preprocessing_function_names=[])],
      # Overall, then per star rating and per review-length bucket.
      slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[feature])
                                            for feature in SLICE_FEATURES],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          # TFMA judges the whole test split; the Evaluator's slice gate judges the slices.
          tfma.MetricConfig(class_name='BinaryAccuracy', per_slice_thresholds=[
              tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                           threshold=accuracy_threshold)]),
          tfma.MetricConfig(class_name='AUC'),
          # 0 or 1 on a single-class slice (each rating is), where AUC and precision do not exist.
          tfma.MetricConfig(class_name='MeanLabel'),
          tfma.MetricConfig(class_name='Precision'),
          tfma.MetricConfig(class_name='Recall'),
          # Counts at 1,000 thresholds: the report's confusion matrix and ROC curve.
          tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
      ])])


def _trainer_config(run_fn: str, encoder: EncoderConfig, training: TrainingConfig,
                    ngram_buckets: int) -> Dict[str, Any]:
  """A Trainer's custom_config: what `run_fn` reads as a TrainerConfig."""
  return TrainerConfig(encoder=encoder, training=training, ngram_buckets=ngram_buckets,
                       source_fingerprint=source_fingerprint(run_fn)).to_custom_config()


def source_fingerprint(function_path: str) -> str:
  """SHA-256 of the source of a function's module and of the `modules` it imports, recursively.

  Components name their user code by module path, which TFX's cache cannot see into; this
  fingerprint in their custom_config makes an edit of that code rerun them, and only them.
  """
  pending = [function_path.rsplit('.', 1)[0]]
  sources = {}
  while pending:
    module = pending.pop()
    if module in sources:
      continue
    with open(importlib.util.find_spec(module).origin, 'rb') as source:
      sources[module] = source.read()
    for node in ast.walk(ast.parse(sources[module])):
      if isinstance(node, ast.ImportFrom) and node.module == 'modules':
        names = [f'modules.{alias.name}' for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        names = [node.module or '']
      elif isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
      else:
        continue
      pending.extend(name for name in names if name.startswith('modules.'))
  digest = hashlib.sha256()
  for module in sorted(sources):
    digest.update(module.encode() + b'\0' + sources[module])
  return digest.hexdigest()
