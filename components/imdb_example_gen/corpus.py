"""The aclImdb layout: where reviews live, how files name them, and how to read them.

Each review is `aclImdb/{train,test}/{pos,neg}/ID_RATING.txt` or `aclImdb/train/unsup/ID_0.txt`;
line ID (from 0) of `urls_FOLDER.txt` beside each folder is the IMDB page of the review's movie.
The corpus may be the `.tar.gz` of the public release or its extracted `aclImdb/` folder.
"""

import collections
import dataclasses
import functools
import os
import re
import tarfile
from typing import Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple, TypeVar

import tensorflow as tf

from modules import features

TARBALL_SUFFIXES = ('.tar.gz', '.tgz')
# aclImdb folder → label; `unsup` holds unlabeled reviews.
FOLDER_LABELS = {'pos': 1, 'neg': 0, 'unsup': features.UNLABELED}
# The folders of each aclImdb set, relative to `aclImdb/`.
SET_FOLDERS = {
    'train': ('train/pos', 'train/neg'),
    'test': ('test/pos', 'test/neg'),
    'unsup': ('train/unsup',),
}
# A drop of new reviews for scheduled retraining: INPUT_BASE/span-N/ in the aclImdb layout.
SPAN_FOLDER = 'span-{SPAN}'
REVIEW_FILE_NAME = re.compile(r'^(\d+)_(\d+)\.txt$')
_URLS_FILE = 'urls_{folder}.txt'
_MOVIE_ID = re.compile(r'/title/(tt\d+)')
T = TypeVar('T')


class CorpusError(ValueError):
  """The corpus at a path is missing or not in the aclImdb layout."""


@dataclasses.dataclass(frozen=True)
class SkippedReview:
  """A review file that could not become an example, and why."""
  path: str
  reason: str


def is_tarball(path: str) -> bool:
  return path.endswith(TARBALL_SUFFIXES)


def split_patterns(corpus_path: str, spans: bool = False) -> Tuple[str, dict]:
  """ExampleGen's `input_base` and a file pattern per aclImdb set for a corpus path.

  Args:
    corpus_path: The `.tar.gz` or the extracted `aclImdb/` folder; with `spans`, a folder of
      drops `span-1/`, `span-2/`, ..., each in the aclImdb layout.
    spans: Whether `corpus_path` holds span drops.

  Returns:
    (input_base, {set name: pattern relative to input_base}). The patterns match real
    files, so ExampleGen's driver fingerprints exactly what each set reads; with `spans`
    they hold `{SPAN}`, which the driver resolves to the newest drop.
  """
  corpus_path = corpus_path.rstrip('/')
  if is_tarball(corpus_path):
    if spans:
      raise CorpusError(f'{corpus_path}: span drops must be folders, not a tarball')
    name = os.path.basename(corpus_path)
    return os.path.dirname(corpus_path), {set_name: name for set_name in SET_FOLDERS}
  prefix = SPAN_FOLDER + '/' if spans else ''
  return corpus_path, {
      set_name: prefix + folders[0].split('/')[0] + '/' + _folder_glob(folders) + '/*.txt'
      for set_name, folders in SET_FOLDERS.items()}


def span_pattern(pattern: str, span: int, other_span: int) -> str:
  """A set's file pattern in the drop of `span`, moved to the drop of `other_span`."""
  return pattern.replace(SPAN_FOLDER.format(SPAN=span) + '/',
                         SPAN_FOLDER.format(SPAN=other_span) + '/', 1)


def _folder_glob(folders: Sequence[str]) -> str:
  """A glob that matches exactly the last path part of each folder, e.g. `pos` and `neg`."""
  leaves = [folder.split('/')[1] for folder in folders]
  if len(leaves) == 1:
    return leaves[0]
  return ''.join('[' + ''.join(sorted(set(chars))) + ']' for chars in zip(*leaves, strict=True))


def first_per_folder(items: Iterable[T], limit: Optional[int],
                     folder_of: Callable[[T], str] = os.path.dirname) -> Iterator[T]:
  """The first `limit` items of each folder, in order (all of them when `limit` is None)."""
  taken = collections.Counter()
  for item in items:
    folder = folder_of(item)
    if limit is None or taken[folder] < limit:
      taken[folder] += 1
      yield item


def read_files(path: str, set_name: str, limit_per_folder: Optional[int] = None
               ) -> Iterator[Tuple[str, bytes, Optional[str]]]:
  """Reads the reviews of `set_name` in `path`.

  Args:
    path: A `.tar.gz` corpus, or one review file of an extracted corpus.
    set_name: The aclImdb set (`train`, `test` or `unsup`) to read from a tarball.
    limit_per_folder: Read only the first this many reviews of each tarball folder.

  Yields:
    (path inside the corpus, content, movie id) per review; the movie id (e.g. `tt0453418`)
    is None where no urls file line names one.
  """
  if not is_tarball(path):
    relative_path = '/'.join(path.split('/')[-3:])
    corpus_root = path[:-len(relative_path)]
    with tf.io.gfile.GFile(path, 'rb') as review_file:
      content = review_file.read()
    folder = os.path.dirname(relative_path)
    yield relative_path, content, _movie_of(relative_path, _folder_movie_ids(corpus_root, folder))
    return
  folders = SET_FOLDERS[set_name]
  # The public tarball holds the urls files after the reviews: a first pass reads them all,
  # once per process for every set.
  stat = tf.io.gfile.stat(path)
  movie_ids = _tarball_movie_ids(path, stat.length, stat.mtime_nsec)
  with tf.io.gfile.GFile(path, 'rb') as raw, tarfile.open(fileobj=raw, mode='r|gz') as tar:
    reviews = (member for member in tar
               if member.isfile() and os.path.dirname(_inside_corpus(member)) in folders)
    for member in first_per_folder(
        reviews, limit_per_folder, lambda member: os.path.dirname(_inside_corpus(member))):
      relative_path = _inside_corpus(member)
      yield (relative_path, tar.extractfile(member).read(),
             _movie_of(relative_path, movie_ids.get(os.path.dirname(relative_path), ())))


def urls_file(folder: str) -> str:
  """The urls file of an aclImdb folder, e.g. `train/pos` → `train/urls_pos.txt`."""
  set_folder, leaf = folder.split('/')
  return f'{set_folder}/{_URLS_FILE.format(folder=leaf)}'


def _movie_ids(urls_text: str) -> Tuple[Optional[str], ...]:
  """The movie id of each line of a urls file (None where a line names none)."""
  return tuple(match.group(1) if match else None
               for match in map(_MOVIE_ID.search, urls_text.splitlines()))


@functools.lru_cache(maxsize=64)
def _folder_movie_ids(corpus_root: str, folder: str) -> Tuple[Optional[str], ...]:
  """The movie ids of an extracted corpus folder's reviews by review id; () without urls file."""
  urls_path = corpus_root + urls_file(folder)
  if not tf.io.gfile.exists(urls_path):
    return ()
  with tf.io.gfile.GFile(urls_path) as urls:
    return _movie_ids(urls.read())


@functools.lru_cache(maxsize=4)
def _tarball_movie_ids(path: str, size: int, mtime_nsec: int) -> Dict[str, Tuple[Optional[str], ...]]:
  """{folder: movie ids by review id} from every urls file of a tarball, in one pass.

  `size` and `mtime_nsec` key the cache: a tarball rewritten at the same path is read again.
  """
  del size, mtime_nsec  # Cache keys only.
  wanted = {urls_file(folder): folder for folders in SET_FOLDERS.values() for folder in folders}
  movie_ids = {}
  with tf.io.gfile.GFile(path, 'rb') as raw, tarfile.open(fileobj=raw, mode='r|gz') as tar:
    for member in tar:
      if member.isfile() and _inside_corpus(member) in wanted:
        text = tar.extractfile(member).read().decode('utf-8', errors='replace')
        movie_ids[wanted[_inside_corpus(member)]] = _movie_ids(text)
  return movie_ids


def _movie_of(relative_path: str, movie_ids: Sequence[Optional[str]]) -> Optional[str]:
  """The movie of the review at `relative_path` by its id's line, or None."""
  match = REVIEW_FILE_NAME.match(os.path.basename(relative_path))
  if not match or int(match.group(1)) >= len(movie_ids):
    return None
  return movie_ids[int(match.group(1))]


def _inside_corpus(member: tarfile.TarInfo) -> str:
  """A tarball member's path without the leading `aclImdb/`."""
  return member.name.split('/', 1)[-1]


def to_example(relative_path: str, content: bytes, movie_id: Optional[str]
               ) -> Tuple[Optional[bytes], Optional[SkippedReview]]:
  """Turns one review file into a serialized tf.Example, or says why it cannot.

  Args:
    relative_path: `SET/FOLDER/ID_RATING.txt` inside the corpus.
    content: The file's bytes.
    movie_id: The IMDB title id of the review's movie, or None where unknown.

  Returns:
    (serialized example, None), or (None, the skipped review with its reason).
  """
  set_name, folder, file_name = relative_path.split('/')[-3:]
  match = REVIEW_FILE_NAME.match(file_name)
  reason = None
  if not match:
    reason = 'file name does not match ID_RATING.txt'
  elif b'\0' in content:
    reason = 'binary file (contains NUL bytes)'
  else:
    try:
      text = content.decode('utf-8')
    except UnicodeDecodeError as error:
      reason = f'not valid UTF-8 ({error.reason} at byte {error.start})'
    else:
      if not text.strip():
        reason = 'empty review'
  if reason:
    return None, SkippedReview(relative_path, reason)
  review_id, rating = match.groups()
  example = tf.train.Example(features=tf.train.Features(feature={
      features.TEXT_KEY: _bytes_feature(content),
      features.LABEL_KEY: _int_feature(FOLDER_LABELS[folder]),
      features.RATING_KEY: _int_feature(int(rating)),
      features.REVIEW_ID_KEY: _bytes_feature(f'{set_name}/{folder}/{review_id}'.encode()),
      features.LENGTH_BUCKET_KEY: _bytes_feature(features.length_bucket(text).encode()),
  }))
  if movie_id:
    example.features.feature[features.MOVIE_ID_KEY].CopyFrom(_bytes_feature(movie_id.encode()))
  return example.SerializeToString(), None


def _bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
