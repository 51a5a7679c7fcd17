"""Beam executor: aclImdb files → tf.Examples in `train`, `eval`, `test` and `unsup` splits.

`eval` is carved from aclImdb `train` by a stable hash of the movie id, so that, like `test`, it
reviews movies that `train` does not (aclImdb train holds up to 30 reviews of a movie); a review
whose movie is unknown (no urls file line) is carved by its review id and counted. Files that
cannot become examples are written to `skipped_reviews.jsonl` in the output artifact and counted,
never dropped silently; `ingestion_report.json` holds the count of each split.

With span drops, `train`, `eval` and `unsup` come from the newest `span_window` drops and `test`
from the newest drop only: the model is judged on the reviews that just arrived. The executor
finds the newest drop itself where no ExampleGen driver did (open-source Kubeflow Pipelines).
"""

import collections
import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.imdb_example_gen import corpus
from modules import features

SKIPPED_REVIEWS_FILE = 'skipped_reviews.jsonl'
INGESTION_REPORT_FILE = 'ingestion_report.json'
SKIPPED_KEY = 'skipped'
UNKNOWN_MOVIE_KEY = 'unknown_movie'  # Reviews of `train` and `eval` carved by review id.
# What the report counts, each also an int property `num_<name>` of the Examples artifact.
REPORTED_COUNTS = ('train', 'eval', 'test', 'unsup', SKIPPED_KEY, UNKNOWN_MOVIE_KEY)
EVAL_PERCENT_KEY = 'eval_percent'
REVIEWS_PER_FOLDER_KEY = 'reviews_per_folder'
SPAN_WINDOW_KEY = 'span_window'
SPANS_PROPERTY = 'spans'  # String property of the Examples artifact: the drops read, e.g. '2,3'.
_SKIPPED_TAG = 'skipped'


def custom_config(eval_percent: int, reviews_per_folder: Optional[int],
                  span_window: Optional[int]) -> example_gen_pb2.CustomConfig:
  """The executor's settings, packed as ExampleGen's CustomConfig."""
  settings = struct_pb2.Struct()
  settings.update({EVAL_PERCENT_KEY: eval_percent, REVIEWS_PER_FOLDER_KEY: reviews_per_folder,
                   SPAN_WINDOW_KEY: span_window})
  config = example_gen_pb2.CustomConfig()
  config.custom_config.Pack(settings)
  return config


def _settings(exec_properties: Dict[str, Any]) -> Tuple[int, Optional[int], Optional[int]]:
  """(eval_percent, reviews_per_folder, span_window) from the packed CustomConfig."""
  config = example_gen_pb2.CustomConfig()
  proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], config)
  packed = struct_pb2.Struct()
  config.custom_config.Unpack(packed)
  settings = json_format.MessageToDict(packed)
  limit, window = settings.get(REVIEWS_PER_FOLDER_KEY), settings.get(SPAN_WINDOW_KEY)
  return (int(settings[EVAL_PERCENT_KEY]), None if limit is None else int(limit),
          None if window is None else int(window))


def spans_to_read(input_base: str, span: int, span_window: Optional[int]) -> List[int]:
  """The drops a run reads, oldest first: the newest `span_window` that exist up to `span`."""
  if span_window is None:
    return [span]
  return [other for other in range(span - span_window + 1, span + 1)
          if tf.io.gfile.isdir(os.path.join(input_base, corpus.SPAN_FOLDER.format(SPAN=other)))]


def resolve_spans(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
  """The properties with `{SPAN}` in the input patterns resolved to the newest drop.

  ExampleGen's driver does this before the executor runs, locally and on Vertex AI (the spec's
  preCacheCheck hook); open-source Kubeflow Pipelines runs no driver, so the patterns arrive
  unresolved and are resolved here the same way, with TFX's own function.
  """
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  if not any(example_gen_utils.SPAN_SPEC in split.pattern for split in input_config.splits):
    return exec_properties
  _, span, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
      exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config.splits)
  return {**exec_properties, example_gen_utils.SPAN_PROPERTY_NAME: span,
          standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config)}


def _ids(serialized_example: bytes) -> Tuple[Optional[bytes], bytes]:
  """(movie id, or None where unknown; review id) of a serialized example."""
  feature = tf.train.Example.FromString(serialized_example).features.feature
  movie_ids = feature[features.MOVIE_ID_KEY].bytes_list.value
  return (movie_ids[0] if movie_ids else None), feature[features.REVIEW_ID_KEY].bytes_list.value[0]


def is_eval(serialized_example: bytes, eval_percent: int) -> bool:
  """Stable across runs and machines: a hash of the movie id (else review id) picks eval."""
  movie_id, review_id = _ids(serialized_example)
  digest = hashlib.sha256(movie_id or review_id).digest()
  return int.from_bytes(digest[:4], 'big') % 100 < eval_percent


class _ToExample(beam.DoFn):
  """Emits serialized examples; unusable files go to the `skipped` output."""

  def process(self, file):
    example, skipped = corpus.to_example(*file)
    if skipped:
      yield beam.pvalue.TaggedOutput(_SKIPPED_TAG, json.dumps(skipped.__dict__))
    else:
      yield example


@beam.ptransform_fn
def _ReadSet(pipeline, input_base: str, patterns: List[str], set_name: str,
             limit_per_folder: Optional[int]):
  """Reads one aclImdb set (a tarball or its files) into examples and skipped reviews."""
  paths = sorted(path for pattern in patterns
                 for path in tf.io.gfile.glob(os.path.join(input_base, pattern)))
  return (pipeline
          | 'ListFiles' >> beam.Create(list(corpus.first_per_folder(paths, limit_per_folder)))
          | 'ReadFiles' >> beam.FlatMap(corpus.read_files, set_name, limit_per_folder)
          | 'ToExample' >> beam.ParDo(_ToExample()).with_outputs(_SKIPPED_TAG, main='examples'))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
  """ExampleGen executor for the aclImdb layout."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    """Reads one aclImdb set: called with (input_base, patterns, set name, limit per folder)."""
    return _ReadSet

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]) -> Dict[str, beam.PCollection]:
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    patterns = {split.name: split.pattern for split in input_config.splits}
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    eval_percent, limit_per_folder, _ = _settings(exec_properties)
    read_set = self.GetInputSourceToExamplePTransform()
    splits, skipped = {}, []
    for set_name in corpus.SET_FOLDERS:
      spans = self._spans[-1:] if set_name == 'test' else self._spans
      set_patterns = [corpus.span_pattern(patterns[set_name], self._spans[-1], span)
                      for span in spans]
      read = pipeline | f'Read[{set_name}]' >> read_set(
          input_base, set_patterns, set_name, limit_per_folder)
      skipped.append(read[_SKIPPED_TAG])
      splits[set_name] = read.examples
    counted = {SKIPPED_KEY: skipped | 'AllSkipped' >> beam.Flatten(),
               UNKNOWN_MOVIE_KEY: splits['train'] | 'UnknownMovie' >> beam.Filter(
                   lambda example: _ids(example)[0] is None)}
    splits['train'], splits['eval'] = splits['train'] | 'CarveEval' >> beam.Partition(
        lambda example, _: int(is_eval(example, eval_percent)), 2)
    self._write_report({**splits, **counted})
    return splits

  def _write_report(self, counted: Dict[str, beam.PCollection]) -> None:
    """Writes the skipped reviews and the count of each split (and of `counted`) beside them."""
    _ = counted[SKIPPED_KEY] | 'WriteSkipped' >> beam.io.WriteToText(
        os.path.join(self._output_uri, SKIPPED_REVIEWS_FILE), shard_name_template='')
    names = [collection | f'Name[{name}]' >> beam.Map(lambda _, n=name: n)
             for name, collection in counted.items()]
    _ = (names
         | 'AllNames' >> beam.Flatten()
         | 'Count' >> beam.combiners.Count.PerElement()
         | 'ToDict' >> beam.combiners.ToDict()
         | 'ToJson' >> beam.Map(json.dumps, sort_keys=True)
         | 'WriteCounts' >> beam.io.WriteToText(
             os.path.join(self._output_uri, INGESTION_REPORT_FILE), shard_name_template=''))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    self._output_uri = examples.uri
    exec_properties = resolve_spans(exec_properties)
    self._spans = spans_to_read(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                                exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME, 0),
                                _settings(exec_properties)[2])
    super().Do(input_dict, output_dict, exec_properties)
    examples.set_string_custom_property(SPANS_PROPERTY, ','.join(map(str, self._spans)))
    # The newest drop, as a property (the driver records it as a custom one only): StatisticsGen
    # and ExampleValidator pass it on, and the data gate names and compares spans by it.
    examples.span = self._spans[-1]
    report = read_report(examples.uri)
    for name, count in report['counts'].items():
      examples.set_int_custom_property(f'num_{name}', count)
    if report['skipped']:
      reasons = collections.Counter(review['reason'] for review in report['skipped'])
      logging.warning('Skipped %d review files (listed in %s): %s', len(report['skipped']),
                      os.path.join(examples.uri, SKIPPED_REVIEWS_FILE), dict(reasons))
    if report['counts'][UNKNOWN_MOVIE_KEY]:
      logging.warning('%d labeled train reviews name no movie (no urls_pos/neg.txt line): eval '
                      'takes them by review id, so their movies may also be in train.',
                      report['counts'][UNKNOWN_MOVIE_KEY])


def read_report(examples_uri: str) -> Dict[str, Any]:
  """The ingestion report of an Examples artifact that this executor wrote.

  Returns:
    {'counts': {split or 'skipped': number of reviews}, 'skipped': [{path, reason}, ...]}.
  """
  with tf.io.gfile.GFile(os.path.join(examples_uri, INGESTION_REPORT_FILE)) as report_file:
    counts = json.loads(report_file.read() or '{}')
  with tf.io.gfile.GFile(os.path.join(examples_uri, SKIPPED_REVIEWS_FILE)) as skipped_file:
    skipped = [json.loads(line) for line in skipped_file if line.strip()]
  return {'counts': {name: counts.get(name, 0) for name in REPORTED_COUNTS}, 'skipped': skipped}
