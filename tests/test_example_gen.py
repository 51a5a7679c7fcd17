"""ImdbExampleGen in a real LocalDagRunner pipeline on generated aclImdb trees."""

import os
import tarfile

import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.types import artifact_utils

from components.imdb_example_gen import ImdbExampleGen, executor
from tests.conftest import movie_of, write_corpus

REVIEWS_PER_FOLDER = 30


def _run_example_gen(corpus_path, root):
  """Runs a pipeline of ImdbExampleGen alone; returns its Examples artifact."""
  metadata_path = os.path.join(root, 'metadata.db')
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name='example-gen-test',
      pipeline_root=os.path.join(root, 'pipeline'),
      components=[ImdbExampleGen(corpus_path=str(corpus_path), eval_percent=20)],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path)))
  with metadata.Metadata(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)) as store:
    [examples] = store.store.get_artifacts_by_type('Examples')
  return examples


def _read_split(uri, split):
  files = tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*'))
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(files, compression_type='GZIP')]


def _feature(example, key):
  feature = example.features.feature[key]
  return feature.bytes_list.value[0] if feature.bytes_list.value else feature.int64_list.value[0]


@pytest.fixture(scope='module')
def corpus_with_bad_files(tmp_path_factory):
  corpus = write_corpus(tmp_path_factory.mktemp('bad'), reviews_per_folder=REVIEWS_PER_FOLDER)
  (corpus / 'train' / 'pos' / '900_9.txt').write_bytes(b'Caf\xe9 was great, not UTF-8')
  (corpus / 'train' / 'neg' / '901_2.txt').write_bytes(b'  \n')
  (corpus / 'test' / 'neg' / '902_1.txt').write_text('A fine review but with a good name')
  (corpus / 'train' / 'pos' / '904_8.txt').write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00binary')
  (corpus / 'test' / 'pos' / 'notes.txt').write_text('Not a review file name.')
  (corpus / 'test' / 'pos' / '903_8.txt').write_text(  # 5 MB, valid: kept whole.
      'A long one.<br /><br />' + 'great acting and a moving story ' * 160_000)
  return corpus


@pytest.mark.parametrize('as_tarball', [False, True], ids=['folder', 'tarball'])
def test_splits_features_and_skipped_files(corpus_with_bad_files, tmp_path, as_tarball):
  corpus_path = corpus_with_bad_files
  if as_tarball:
    corpus_path = tmp_path / 'aclImdb_v1.tar.gz'
    with tarfile.open(corpus_path, 'w:gz') as tar:
      tar.add(corpus_with_bad_files, arcname='aclImdb')
  artifact = _run_example_gen(corpus_path, str(tmp_path))
  uri = artifact.uri

  splits = {name: _read_split(uri, name) for name in ('train', 'eval', 'test', 'unsup')}
  labeled_train = 2 * REVIEWS_PER_FOLDER
  assert len(splits['train']) + len(splits['eval']) == labeled_train  # The bad files skipped.
  assert 0 < len(splits['eval']) < len(splits['train'])
  assert len(splits['test']) == 2 * REVIEWS_PER_FOLDER + 2
  assert len(splits['unsup']) == REVIEWS_PER_FOLDER
  train_ids = {_feature(e, 'review_id') for e in splits['train']}
  eval_ids = {_feature(e, 'review_id') for e in splits['eval']}
  assert not train_ids & eval_ids
  # Eval reviews movies that train does not, as test does.
  train_movies = {_feature(e, 'movie_id') for e in splits['train']}
  assert train_movies and not train_movies & {_feature(e, 'movie_id') for e in splits['eval']}
  assert {_feature(e, 'label') for e in splits['unsup']} == {-1}
  assert {_feature(e, 'rating') for e in splits['unsup']} == {0}
  for example in splits['train'] + splits['eval'] + splits['test']:
    review_id = _feature(example, 'review_id').decode()
    label, rating = _feature(example, 'label'), _feature(example, 'rating')
    assert review_id.split('/')[1] == ('pos' if label == 1 else 'neg')
    assert (rating >= 7) if label == 1 else (rating <= 4)
    text = _feature(example, 'text').decode()
    if review_id != 'test/neg/902':
      assert '<br />' in text  # Raw text; Transform cleans it.
    if review_id == 'test/pos/903':
      assert len(text) > 5_000_000
    set_name, _, number = review_id.split('/')
    if int(number) < REVIEWS_PER_FOLDER:
      assert _feature(example, 'movie_id').decode() == movie_of(set_name, int(number))
    else:  # Added files: no urls line names their movie.
      assert 'movie_id' not in example.features.feature
    words = len(text.split())
    start, _, end = _feature(example, 'length_bucket').decode().rstrip('+').partition('-')
    assert int(start) <= words and (not end or words <= int(end))

  report = executor.read_report(uri)
  assert report['counts'] == {'train': len(splits['train']), 'eval': len(splits['eval']),
                              'test': len(splits['test']), 'unsup': REVIEWS_PER_FOLDER,
                              'skipped': 4, 'unknown_movie': 0}
  files_in = sum(1 for path in corpus_with_bad_files.rglob('*.txt')
                 if not path.name.startswith('urls_'))
  assert files_in == sum(report['counts'].values())  # Every file is an example or is skipped.
  reasons = {review['path']: review['reason'] for review in report['skipped']}
  assert reasons['train/pos/900_9.txt'].startswith('not valid UTF-8')
  assert reasons['train/neg/901_2.txt'] == 'empty review'
  assert reasons['train/pos/904_8.txt'] == 'binary file (contains NUL bytes)'
  assert reasons['test/pos/notes.txt'] == 'file name does not match ID_RATING.txt'
  assert artifact.custom_properties['num_skipped'].int_value == 4
  assert artifact_utils.decode_split_names(artifact.properties['split_names'].string_value) == [
      'train', 'eval', 'test', 'unsup']


def test_without_urls_files_eval_is_carved_by_review_and_counted(tmp_path):
  corpus = write_corpus(tmp_path / 'generated', reviews_per_folder=REVIEWS_PER_FOLDER)
  for urls_file in corpus.rglob('urls_*.txt'):
    urls_file.unlink()
  uri = _run_example_gen(corpus, str(tmp_path)).uri
  splits = {name: _read_split(uri, name) for name in ('train', 'eval')}
  assert 0 < len(splits['eval']) < len(splits['train'])
  assert not any('movie_id' in e.features.feature for e in splits['train'] + splits['eval'])
  assert executor.read_report(uri)['counts']['unknown_movie'] == 2 * REVIEWS_PER_FOLDER


def _example(review_id: bytes, movie_id: bytes = None) -> bytes:
  example = tf.train.Example()
  example.features.feature['review_id'].bytes_list.value.append(review_id)
  if movie_id:
    example.features.feature['movie_id'].bytes_list.value.append(movie_id)
  return example.SerializeToString()


def test_eval_carving_is_stable_and_keeps_a_movie_together():
  serialized = _example(b'train/pos/17')
  assert len({executor.is_eval(serialized, 50) for _ in range(3)}) == 1
  assert executor.is_eval(serialized, 100) and not executor.is_eval(serialized, 0)
  reviews_of_movies = [[_example(f'train/{folder}/{movie * 10 + review}'.encode(),
                                 f'tt{movie:07d}'.encode())
                        for folder in ('pos', 'neg') for review in range(5)]
                       for movie in range(40)]
  carved = [{executor.is_eval(review, 50) for review in reviews} for reviews in reviews_of_movies]
  assert all(len(sides) == 1 for sides in carved)  # All of a movie's reviews on one side.
  assert {True, False} == set.union(*carved)
