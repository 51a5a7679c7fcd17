"""ImdbExampleGen: a FileBasedExampleGen whose executor reads the aclImdb layout."""

from typing import Optional

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.imdb_example_gen import corpus, executor

# Output splits. `eval` is carved from aclImdb train, so it reads the same files.
SPLIT_SOURCES = {'train': 'train', 'eval': 'train', 'test': 'test', 'unsup': 'unsup'}


class ImdbExampleGen(FileBasedExampleGen):
  """Ingests aclImdb reviews: `text`, `label`, `rating`, `review_id`, `length_bucket`, `movie_id`.

  Splits: `train` and `eval` (the reviews of about `eval_percent`% of aclImdb train's movies,
  by a stable hash of the movie id), `test` (aclImdb test) and `unsup` (the unlabeled
  reviews, label -1). `movie_id` is absent where the corpus's urls files name no movie.
  """

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, corpus_path: str, eval_percent: int = 10,
               reviews_per_folder: Optional[int] = None, span_window: Optional[int] = None):
    """Constructs the component.

    Args:
      corpus_path: The aclImdb `.tar.gz` or its extracted `aclImdb/` folder.
      eval_percent: Share of aclImdb train held out as the `eval` split, in percent.
      reviews_per_folder: Read only the first this many reviews of each folder (`pos`,
        `neg`, `unsup` of each set) for a quick run; None reads them all.
      span_window: None reads one corpus. N: `corpus_path` holds drops `span-1/`, `span-2/`,
        ... in the aclImdb layout; a run reads the newest N drops up to the newest one (its
        `test` split from the newest only) and its Examples carry the span of the newest.
    """
    input_base, patterns = corpus.split_patterns(corpus_path, spans=span_window is not None)
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=split, pattern=patterns[source])
        for split, source in SPLIT_SOURCES.items()])
    super().__init__(
        input_base=input_base,
        input_config=input_config,
        custom_config=executor.custom_config(eval_percent, reviews_per_folder, span_window))
