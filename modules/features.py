"""Feature names, special tokens and masking constants shared by Transform and the Trainers."""

import math

# Raw features written by ExampleGen.
TEXT_KEY = 'text'
LABEL_KEY = 'label'
RATING_KEY = 'rating'
REVIEW_ID_KEY = 'review_id'
# The review's movie (IMDB title id, from aclImdb's urls files): `eval` is carved by it. Optional.
MOVIE_ID_KEY = 'movie_id'
LENGTH_BUCKET_KEY = 'length_bucket'  # Review length in words, bucketed: an evaluation slice.
# `label` of the unlabeled (unsup) reviews, as in TFDS imdb_reviews.
UNLABELED = -1

# Transformed features written by Transform.
TOKEN_IDS_KEY = 'token_ids'  # Clean ids: what the classifier reads.
MLM_TOKEN_IDS_KEY = 'mlm_token_ids'  # Ids after BERT masking: what the MLM reads.
MLM_POSITIONS_KEY = 'mlm_positions'  # Where the masked-LM predicts.
MLM_LABELS_KEY = 'mlm_labels'  # The original ids at those positions.
MLM_WEIGHTS_KEY = 'mlm_weights'  # 1.0 for a real prediction, 0.0 for padding.
# Hash buckets of the review's distinct unigrams and bigrams, padded with PAD_ID, and the
# naive-Bayes log-count ratio of each (0.0 for padding): what the classifier's linear n-gram
# part reads.
NGRAM_IDS_KEY = 'ngram_ids'
NGRAM_LOG_RATIOS_KEY = 'ngram_log_ratios'
# Distinct unigrams and bigrams kept per review, the first ones: a fixed width for the batch,
# which a few percent of aclImdb's reviews exceed (bench/README.md).
MAX_NGRAMS_PER_REVIEW = 1024

# Special tokens sit at fixed ids before the learned vocabulary.
PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN = '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))
NUM_SPECIAL_TOKENS = len(SPECIAL_TOKENS)
VOCABULARY_NAME = 'tokens'

# A review longer than the sequence keeps its first words (this share of the room) and its
# last words (the rest): the verdict tends to come at the end (Sun et al. 2019, "How to
# Fine-Tune BERT for Text Classification?", found head+tail truncation best on IMDB).
HEAD_SHARE = 0.25

# BERT masking: of the real tokens 15% are selected; of those 80% become [MASK],
# 10% a random token and 10% stay unchanged.
MASK_SELECTION_RATE = 0.15
MASK_TOKEN_RATE = 0.8
RANDOM_TOKEN_RATE = 0.1


# Lower bounds, in words, of the review-length buckets (the median review has about 170 words).
LENGTH_BUCKET_STARTS = (0, 100, 200, 400)


def length_bucket(text: str) -> str:
  """The bucket of a review's length in words, e.g. '100-199' or '400+'."""
  words = len(text.split())
  start = max(bound for bound in LENGTH_BUCKET_STARTS if bound <= words)
  ends = [bound for bound in LENGTH_BUCKET_STARTS if bound > words]
  return f'{start}-{ends[0] - 1}' if ends else f'{start}+'


def max_predictions(sequence_length: int) -> int:
  """Masked positions per sequence: the selection rate of the real tokens, rounded up."""
  real_tokens = sequence_length - 2  # [CLS] and [SEP] are never selected.
  return max(1, math.ceil(round(real_tokens * MASK_SELECTION_RATE, 6)))
