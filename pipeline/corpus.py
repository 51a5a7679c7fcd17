"""Finds the aclImdb corpus before any component runs: a local copy, or a verified download."""

import gzip
import hashlib
import os
import pathlib
import re
import shutil
import tarfile
import urllib.request
import zlib
from typing import Optional, Set

from components.imdb_example_gen.corpus import CorpusError, SET_FOLDERS, SPAN_FOLDER, is_tarball

CORPUS_URL = 'https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz'
CORPUS_SHA256 = 'c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe'
CORPUS_ENV = 'IMDB_DATA'
DEFAULT_CACHE_DIR = pathlib.Path.home() / '.cache' / 'imdb-bert-tfx'
_SPAN_DROP = re.compile(r'^span-(\d+)$')  # A folder named like SPAN_FOLDER.
_HOW_TO_POINT = (f'Point at a local copy with --data PATH or {CORPUS_ENV}=PATH (the aclImdb_v1.tar.gz '
                 'or its extracted aclImdb/ folder).')


def resolve_corpus(path: Optional[str] = None, cache_dir: pathlib.Path = DEFAULT_CACHE_DIR,
                   url: str = CORPUS_URL) -> str:
  """The corpus to ingest: `path`, else $IMDB_DATA, else a cached, checksum-verified download.

  Args:
    path: A `.tar.gz` or an aclImdb folder (or the folder that holds `aclImdb/`).
    cache_dir: Where the download is kept.
    url: Where to download from when no local copy is given.

  Returns:
    The path of a tarball or of an `aclImdb` folder, checked to be in the aclImdb layout.

  Raises:
    CorpusError: with what is wrong and how to point at a local copy.
  """
  path = path or os.environ.get(CORPUS_ENV)
  if path:
    return _check_local(path)
  return str(_download(url, cache_dir / os.path.basename(url)))


def resolve_drops(path: Optional[str] = None) -> str:
  """The folder of span drops for scheduled retraining: `path`, else $IMDB_DATA.

  Returns:
    The folder, whose newest `span-N/` drop is checked to be in the aclImdb layout.

  Raises:
    CorpusError: no folder given, or it holds no `span-N/` drop, or the newest is malformed.
  """
  path = path or os.environ.get(CORPUS_ENV)
  if not path or not os.path.isdir(path):
    raise CorpusError(f'Span drops folder not found: {path or "none given"}. Pass --data FOLDER '
                      f'or {CORPUS_ENV}=FOLDER, a folder of span-1/, span-2/, ... drops.')
  spans = [int(match.group(1)) for match in map(_SPAN_DROP.match, os.listdir(path)) if match]
  if not spans:
    raise CorpusError(f'{path} holds no span-N/ drop (span-1/, span-2/, ... each in the aclImdb '
                      'layout: train/pos, train/neg, train/unsup, test/pos, test/neg).')
  _check_local(os.path.join(path, SPAN_FOLDER.format(SPAN=max(spans))))
  return path


def _check_local(path: str) -> str:
  """Checks a local corpus path; returns the tarball or the `aclImdb` folder."""
  if not os.path.exists(path):
    raise CorpusError(f'Corpus not found: {path} does not exist. {_HOW_TO_POINT}')
  if os.path.isfile(path):
    if not is_tarball(path):
      raise CorpusError(f'Corpus {path} is a file but not a .tar.gz. {_HOW_TO_POINT}')
    _check_layout(path, _tarball_folders(path))
    return path
  folder = os.path.join(path, 'aclImdb') if os.path.isdir(os.path.join(path, 'aclImdb')) else path
  _check_layout(folder, {sub for subs in SET_FOLDERS.values() for sub in subs
                         if os.path.isdir(os.path.join(folder, sub))})
  return folder


def _tarball_folders(path: str) -> Set[str]:
  """The folders of review files in a tarball, read to its end (a few seconds for aclImdb).

  Reading it whole catches a truncated or corrupt download before any component runs.
  """
  folders = set()
  try:
    with gzip.open(path) as uncompressed:
      with tarfile.open(fileobj=uncompressed, mode='r|') as tar:
        for member in tar:
          folders.add(os.path.dirname(member.name.split('/', 1)[-1]))
      # Tarfile skips members' content unchecked: gzip raises EOFError unless the stream ends whole.
      while uncompressed.read(1 << 20):
        pass
  except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
    raise CorpusError(f'Corpus {path} is not a readable .tar.gz, or it is truncated ({error}). '
                      f'{_HOW_TO_POINT}') from error
  return folders


def _check_layout(path: str, folders: Set[str]) -> None:
  """Raises CorpusError naming the aclImdb folders that `folders` lacks."""
  missing = [sub for subs in SET_FOLDERS.values() for sub in subs if sub not in folders]
  if missing:
    raise CorpusError(f'Corpus {path} is not in the aclImdb layout: missing '
                      f'{", ".join(missing)}. {_HOW_TO_POINT}')


def _download(url: str, destination: pathlib.Path) -> pathlib.Path:
  """Downloads `url` once into `destination`, verifying its SHA-256."""
  if destination.exists() and _sha256(destination) == CORPUS_SHA256:
    return destination
  destination.parent.mkdir(parents=True, exist_ok=True)
  partial = destination.with_suffix('.partial')
  print(f'Downloading the aclImdb corpus from {url} to {destination} ...', flush=True)
  try:
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, 'wb') as out:
      shutil.copyfileobj(response, out)
  except OSError as error:
    raise CorpusError(f'No corpus path given and the download from {url} failed ({error}). '
                      f'{_HOW_TO_POINT}') from error
  digest = _sha256(partial)
  if digest != CORPUS_SHA256:
    partial.unlink()
    raise CorpusError(f'The download from {url} has SHA-256 {digest}, expected {CORPUS_SHA256}. '
                      f'{_HOW_TO_POINT}')
  partial.rename(destination)
  return destination


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as data:
    for block in iter(lambda: data.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()
