"""Shared fixtures: a small aclImdb-shaped corpus generated on the fly."""

import pathlib
import random

import pytest

_POSITIVE_WORDS = 'great wonderful superb brilliant loved moving masterpiece delightful'.split()
_NEGATIVE_WORDS = 'awful boring terrible waste dull hated painful worst'.split()
_COMMON_WORDS = 'the movie film this was and a of it plot actors story i watched scene'.split()


def make_review(rng: random.Random, positive: bool) -> str:
  """A review whose sentiment words follow its label, with HTML breaks and punctuation."""
  sentiment = _POSITIVE_WORDS if positive else _NEGATIVE_WORDS
  words = [rng.choice(_COMMON_WORDS + sentiment) for _ in range(rng.randint(15, 60))]
  return ' '.join(words[:10]).capitalize() + '!<br /><br />' + ' '.join(words[10:]) + '.'


def write_corpus(root: pathlib.Path, reviews_per_folder: int, seed: int = 0) -> pathlib.Path:
  """Writes `root/aclImdb/{train,test}/{pos,neg}` and `train/unsup` like the public tarball."""
  rng = random.Random(seed)
  corpus = root / 'aclImdb'
  for split in ('train', 'test'):
    for folder, positive in (('pos', True), ('neg', False)):
      directory = corpus / split / folder
      directory.mkdir(parents=True)
      for review_id in range(reviews_per_folder):
        rating = rng.randint(7, 10) if positive else rng.randint(1, 4)
        (directory / f'{review_id}_{rating}.txt').write_text(make_review(rng, positive))
  unsup = corpus / 'train' / 'unsup'
  unsup.mkdir()
  for review_id in range(reviews_per_folder):
    (unsup / f'{review_id}_0.txt').write_text(make_review(rng, rng.random() < 0.5))
  return corpus


@pytest.fixture(scope='session')
def small_corpus(tmp_path_factory) -> pathlib.Path:
  """An aclImdb folder with 40 reviews per labeled folder and 40 unlabeled ones."""
  return write_corpus(tmp_path_factory.mktemp('corpus'), reviews_per_folder=40)
