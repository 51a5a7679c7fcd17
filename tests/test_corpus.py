"""Finding the corpus: local copies, the download, and clear errors before any component runs."""

import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from components.imdb_example_gen.corpus import CorpusError
from pipeline import corpus
from tests.conftest import REPO_ROOT, write_corpus


def test_local_folder_or_its_parent_resolves_to_the_aclimdb_folder(small_corpus):
  assert corpus.resolve_corpus(str(small_corpus)) == str(small_corpus)
  assert corpus.resolve_corpus(str(small_corpus.parent)) == str(small_corpus)


def test_environment_variable_points_at_a_tarball(small_corpus, tmp_path, monkeypatch):
  tarball = tmp_path / 'aclImdb_v1.tar.gz'
  with tarfile.open(tarball, 'w:gz') as tar:
    tar.add(small_corpus, arcname='aclImdb')
  monkeypatch.setenv(corpus.CORPUS_ENV, str(tarball))
  assert corpus.resolve_corpus() == str(tarball)


def _tarball_of(folder, path):
  with tarfile.open(path, 'w:gz') as tar:
    tar.add(folder, arcname='aclImdb')
  return path


def _truncated_tarball(root):
  whole = _tarball_of(write_corpus(root, reviews_per_folder=20), root / 'whole.tar.gz')
  cut = root / 'aclImdb_v1.tar.gz'
  cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])  # A download cut short.
  return cut


def _tarball_without_test(root):
  folder = write_corpus(root, reviews_per_folder=5)
  shutil.rmtree(folder / 'test')
  return _tarball_of(folder, root / 'no-test.tar.gz')


@pytest.mark.parametrize('make_bad_corpus, message', [
    (lambda root: root / 'missing.tar.gz', 'does not exist'),
    (lambda root: (root / 'corrupt.tar.gz').write_bytes(b'not gzip') and root / 'corrupt.tar.gz',
     'not a readable .tar.gz'),
    (lambda root: (root / 'aclImdb' / 'train' / 'pos').mkdir(parents=True) or root,
     'missing train/neg'),
    (lambda root: _truncated_tarball(root), 'truncated'),
    (lambda root: _tarball_without_test(root), 'missing test/pos, test/neg'),
], ids=['missing', 'not-gzip', 'wrong-layout', 'truncated-tarball', 'tarball-without-test'])
def test_bad_local_copy_names_the_path_and_the_fix(tmp_path, make_bad_corpus, message):
  path = str(make_bad_corpus(tmp_path))
  with pytest.raises(CorpusError, match=message) as error:
    corpus.resolve_corpus(path)
  assert '--data' in str(error.value) and corpus.CORPUS_ENV in str(error.value)


def test_failed_download_says_how_to_point_at_a_local_copy(tmp_path, monkeypatch):
  monkeypatch.delenv(corpus.CORPUS_ENV, raising=False)
  with pytest.raises(CorpusError, match='download .* failed.*--data'):
    corpus.resolve_corpus(cache_dir=tmp_path, url=(tmp_path / 'nowhere.tar.gz').as_uri())


def test_download_with_a_wrong_checksum_is_rejected_and_not_cached(tmp_path, monkeypatch):
  monkeypatch.delenv(corpus.CORPUS_ENV, raising=False)
  served = tmp_path / 'served' / 'aclImdb_v1.tar.gz'
  served.parent.mkdir()
  served.write_bytes(b'tampered')
  cache = tmp_path / 'cache'
  with pytest.raises(CorpusError, match='SHA-256'):
    corpus.resolve_corpus(cache_dir=cache, url=served.as_uri())
  assert not list(cache.iterdir())


def test_runner_stops_before_any_component_with_one_clear_line(tmp_path):
  result = subprocess.run(
      [sys.executable, 'local_runner.py', '--preset', 'smoke', '--output-dir', str(tmp_path)],
      cwd=REPO_ROOT, capture_output=True, text=True,
      env={**os.environ, corpus.CORPUS_ENV: str(tmp_path / 'nowhere')})
  assert result.returncode == 2
  assert f'error: Corpus not found: {tmp_path / "nowhere"} does not exist' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'pipelines').exists()
