"""Does MLM pretraining earn its place? Variants of pretraining and fine-tuning, side by side.

Each variant pretrains the encoder of `modules/models.py` with masked-LM on train+unsup (or with
ELECTRA's replaced-token detection, by matching halves of reviews, by learning an n-gram
teacher's sentiment of each review, or not at all), fine-tunes the classifier on train and
reports its best accuracy on `eval` (never `test`). Variants differ in
pretraining steps and objective, learning rates, dropout, width, vocabulary, pooling, the
masked-LM head's output projection (tied to the token embedding or not) and softmax (over the
whole vocabulary or a sample of it), the first layer's reach, seed and the number of labeled
reviews. Too slow for a 2-core CPU as a sweep (each pretraining is the default run's half hour),
it was written to run on a lent GPU machine, which has no TensorFlow (and may need Keras 3 and
keras-hub brought as wheels):

  # Here (TensorFlow): the token ids of a finished default run's Transform output.
  python bench/pretraining_sweep.py export bench/tmp/default/root/Transform/transformed_examples/ID ids.npz
  # There (any Keras 3 backend, e.g. KERAS_BACKEND=torch): every variant, in parallel processes.
  python bench/pretraining_sweep.py sweep ids.npz bench/results/pretraining-sweep.jsonl
  python bench/pretraining_sweep.py report bench/results/pretraining-sweep.jsonl  # → .md beside it

The few-label variants (`labels*`) pretrain nothing: they start from a random encoder or from the
run's own pretrained one, and take about 37 minutes on a 2-core CPU:

  python bench/pretraining_sweep.py sweep ids.npz bench/results/few-labels.jsonl --prefix labels \
      --encoder bench/tmp/default/root/PretrainTrainer/model/ID/Format-Serving/encoder.keras

A linear probe on frozen features, the pretrained encoder's beside random ones (minutes on a CPU):

  python bench/pretraining_sweep.py probe ids.npz ENCODER.keras bench/results/linear-probe.md

Masking follows Transform's: 15% of the real tokens, once per review, 80/10/10.
"""

import argparse
import collections
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time
import types

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# name: arguments of `run`. r_ = random encoder, p_ = pretrained; _sN = seed N.
VARIANTS = {
    'r_cls': '--pre_steps 0',
    'r_mean': '--pre_steps 0 --pooling mean',
    'r_lr1e3': '--pre_steps 0 --ft_lr 1e-3',
    'p_cls': '', 'p_mean': '--pooling mean',
    'p_lr1e3': '--ft_lr 1e-3', 'p_cls_ftlr1e4': '--ft_lr 1e-4',
    'p_d0_mean': '--pre_dropout 0 --ft_dropout 0.1 --pooling mean',
    'p_d0_lr1e3': '--pre_dropout 0 --ft_dropout 0.1 --ft_lr 1e-3',
    'p_lr3_cls': '--pre_lr 3e-3',
    'p_d0_lr3_cls': '--pre_dropout 0 --ft_dropout 0.1 --pre_lr 3e-3',
    'p_d0_lr3_mean': '--pre_dropout 0 --ft_dropout 0.1 --pre_lr 3e-3 --pooling mean',
    'p_v8k_d0_mean': '--vocab 8000 --pre_dropout 0 --ft_dropout 0.1 --pooling mean',
    'p_long_cls': '--pre_steps 6000 --pre_dropout 0 --ft_dropout 0.1 --checks 4',
    'p_long_cls_lr1e3': '--pre_steps 6000 --pre_dropout 0 --ft_dropout 0.1 --ft_lr 1e-3 --checks 4',
    'p_long_d0_mean': '--pre_steps 6000 --pre_dropout 0 --ft_dropout 0.1 --pooling mean --checks 12',
    # The masked-LM head with an output projection of its own, as the pipeline's now; the
    # variants above tie it to the token embedding, as the pipeline did when they were measured.
    'p_untied': '--untied 1',
    'p_long_untied': '--untied 1 --pre_steps 6000 --pre_dropout 0 --ft_dropout 0.1 --checks 4',
    'h64_r': '--pre_steps 0 --hidden 64 --inter 256',
    'h64_p': '--pre_steps 3800 --hidden 64 --inter 256 --pre_dropout 0 --ft_dropout 0.1 --checks 8',
    'h64_p_lr2': '--pre_steps 3800 --hidden 64 --inter 256 --pre_dropout 0 --ft_dropout 0.1 --pre_lr 2e-3 --checks 8',
    # With the classifier's naive-Bayes n-gram part (2^20 buckets, as the default preset).
    'ng_only': '--pre_steps 0 --ngram_buckets 1048576 --ngrams_only 1',
    'ng_r': '--pre_steps 0 --ngram_buckets 1048576',
    'ng_p': '--ngram_buckets 1048576',
    'ng_p_long': '--pre_steps 6000 --pre_dropout 0 --ft_dropout 0.1 --checks 4 --ngram_buckets 1048576',
    # Each part with a loss of its own: the n-gram part cannot fit `train` for the encoder.
    'sep_r': '--pre_steps 0 --ngram_buckets 1048576 --separate_losses 1',
    'sep_p': '--ngram_buckets 1048576 --separate_losses 1',
    'sep_p_long': '--pre_steps 6000 --pre_dropout 0 --ft_dropout 0.1 --checks 4 --ngram_buckets 1048576 --separate_losses 1',
    'sep_r_lr1e3': '--pre_steps 0 --ngram_buckets 1048576 --separate_losses 1 --ft_lr 1e-3',
    'sep_p_lr1e3': '--ngram_buckets 1048576 --separate_losses 1 --ft_lr 1e-3',
    # Levers against the plateau near 13% masked-token accuracy, which the default run's 1,500
    # steps of 64 never leave (on the GPU, 6,000 steps of 64 left it after about 2,000): MLM
    # alone, batches of 16 for the same half hour on a 2-core CPU (4,500 steps), with learned
    # or sinusoidal initial position embeddings (the tied head, as the variants above).
    'plateau_bs16': '--bs 16 --pre_steps 4500 --checks 9 --pre_dropout 0 --ft_steps 0',
    'plateau_bs16_sin': '--bs 16 --pre_steps 4500 --checks 9 --pre_dropout 0 --ft_steps 0 '
                        '--positions sinusoid',
    # A pre-LN encoder (see _normalize_first) at the default run's schedule and masked-LM head,
    # and at three times its learning rate: on a 2-core CPU, --jit 1 for XLA's speed.
    'plateau_preln': '--pre_ln 1 --untied 1 --pre_dropout 0 --checks 10 --ft_steps 0',
    'plateau_preln_lr3e3': '--pre_ln 1 --untied 1 --pre_dropout 0 --checks 10 --ft_steps 0 '
                           '--pre_lr 3e-3 --jit 1',
    # Sequences of 128 (each review's first 128 tokens), so the same tokens take twice the steps.
    'plateau_len128': '--length 128 --pre_steps 3000 --untied 1 --pre_dropout 0 --checks 10 '
                      '--ft_steps 0 --jit 1',
    # ELECTRA's replaced-token detection (see _replaced_token_detector) at the default run's
    # steps; its curve is the generator's masked-token accuracy.
    'electra': '--objective rtd --pre_dropout 0 --checks 5 --ft_steps 0 --jit 1',
    # Masked-LM with a first layer that attends within 4 tokens (see _attend_locally_first).
    'plateau_local4': '--local_window 4 --pre_dropout 0 --checks 5 --ft_steps 0 --jit 1',
    # Matching halves of reviews (see _halves_matcher) instead of masked-LM: each step encodes
    # 2 x 64 reviews, so 900 steps take about the default run's half hour of pretraining.
    'contrast_halves': '--objective halves --pre_steps 900 --pre_dropout 0 --checks 3 --ft_steps 0 --jit 1',
    # Both: masked-LM on each masked half, and the masked halves matched as above, in the same
    # two encoder passes per review, with plateau_local4's local first layer.
    'mlm_halves_local4': '--objective mlm_halves --local_window 4 --pre_steps 900 --pre_dropout 0 '
                         '--checks 3 --ft_steps 0 --jit 1',
    # More masked-LM steps in the half hour: plateau_local4 at half the width, on a sampled
    # softmax (see _sampled_masked_lm), each step a third of plateau_local4's on a 2-core CPU.
    'small_local4_sampled': '--hidden 64 --inter 256 --local_window 4 --negatives 1024 --pre_steps 3600 '
                            '--pre_dropout 0 --checks 6 --ft_steps 0 --jit 1',
    # plateau_local4 on the same sampled softmax: what the sampled softmax alone changes.
    'sampled_softmax_local4': '--local_window 4 --negatives 1024 --pre_dropout 0 --checks 5 --ft_steps 0 --jit 1',
    # Masked-LM from token embeddings counted from co-occurrences (`sweep --tokens`, see embed),
    # with the pipeline's untied head and global attention.
    'mlm_from_svd': '--tokens {tokens} --untied 1 --pre_dropout 0 --checks 3 --ft_steps 0 --jit 1',
    # Masked-LM that masks the words that carry sentiment (see _sentiment_weights), with the
    # pipeline's untied head and global attention.
    'mlm_sentiment': '--mask_sentiment 0.01 --untied 1 --pre_dropout 0 --checks 3 --ft_steps 0 --jit 1',
    # The classifier learns an n-gram teacher's sentiment of every review of train+unsup (see
    # _distillation_targets) before it is fine-tuned on train's labels: 1,000 steps of 64 are
    # about one pass over the 75,000 reviews.
    'distill': '--objective distill --pre_steps 1000 --pre_lr 5e-4 --checks 4',
    # The same with NBSVM on Transform's n-grams as the teacher (the classifier's own n-gram
    # part, fitted by scikit-learn), then fine-tuned as the pipeline does, each part on its own
    # loss, beside a random encoder fine-tuned so: whether the blend gains from such an encoder.
    'nbsvm_distill': '--objective distill --teacher nbsvm --pre_steps 1000 --pre_lr 5e-4 --checks 4 '
                     '--ngram_buckets 1048576 --separate_losses 1',
    'nbsvm_r': '--pre_steps 0 --ngram_buckets 1048576 --separate_losses 1',
    # As the pipeline could pretrain: masked-LM (its untied head and 1,500 steps of 64) with that
    # teacher's sentiment learned from [CLS] in the same encoder pass over the masked ids.
    'nbsvm_mlm_distill': '--objective mlm_distill --teacher nbsvm --untied 1 --pre_dropout 0 --checks 3 '
                         '--jit 1 --ngram_buckets 1048576 --separate_losses 1',
}

# Further seeds of the variants compared over seeds: NAME_sN is NAME with --seed N.
_FURTHER_SEEDS = {
    **dict.fromkeys(('r_cls', 'r_lr1e3', 'p_cls', 'p_lr1e3', 'p_untied', 'ng_r', 'ng_p', 'ng_p_long',
                     'sep_r', 'sep_p', 'sep_p_long', 'nbsvm_r'), (1, 2)),
    **dict.fromkeys(('distill', 'nbsvm_distill'), (1,)),
}
VARIANTS.update({f'{name}_s{seed}': f'{VARIANTS[name]} --seed {seed}'.strip()
                 for name, seeds in _FURTHER_SEEDS.items() for seed in seeds})

# How a few-label variant's encoder starts: random, pretrained (`sweep --encoder`), from the
# pretrained one's embeddings under random transformer layers, from all of it but a random
# token embedding, from all of it with its token embedding centered, from half or a quarter of
# it blended with a random encoder (see _transfer), or random but for token embeddings counted
# from co-occurrences (`sweep --tokens`, see embed).
_STARTS = {'r': '--pre_steps 0', 'p': '--encoder {encoder}', 'pemb': '--encoder {encoder} --keep embeddings',
           'pnotok': '--encoder {encoder} --keep all_but_tokens',
           'pcent': '--encoder {encoder} --keep all_centered',
           'pmix50': '--encoder {encoder} --pretrained_share 0.5',
           'pmix25': '--encoder {encoder} --pretrained_share 0.25',
           'svd': '--pre_steps 0 --tokens {tokens}'}


def _seeded_starts(name: str, settings: str, starts=('r', 'p', 'pemb'), ft_steps: int = 300) -> dict:
  """NAME_START and NAME_START_s1: `ft_steps` fine-tuning steps from each start, seeds 0 and 1."""
  return {f'{name}_{start}{f"_s{seed}" if seed else ""}':
          f'{_STARTS[start]} {settings} --ft_steps {ft_steps} --seed {seed}'
          for seed in (0, 1) for start in starts}


def _few_label_variants() -> dict:
  """Fine-tuning on a few labeled reviews (a random subset of train per seed): the setting where
  pretraining is expected to pay first. No variant pretrains, so they run on a CPU too."""
  return {
      **_seeded_starts('labels500', '--train_reviews 500'),
      **_seeded_starts('labels2000', '--train_reviews 2000'),
      # Each review's first 128 tokens, from a random encoder or from plateau_len128's (`sweep
      # --save_encoders`), which leaves the plateau that the default run stays on.
      **_seeded_starts('len128_labels2000', '--length 128 --train_reviews 2000', ('r', 'p')),
      # The local first layer of `plateau_local4`, from a random encoder and from its own, in
      # each of the ways of _STARTS.
      **_seeded_starts('local4_labels2000', '--local_window 4 --train_reviews 2000',
                       ('r', 'p', 'pemb', 'pnotok', 'pcent', 'pmix50', 'pmix25')),
      # From contrast_halves' encoder (a random one is labels2000_r), and both fine-tuned on the
      # mean of the sequence output instead of [CLS].
      **_seeded_starts('halves_labels2000', '--train_reviews 2000', ('p',)),
      **_seeded_starts('halves_mean_labels2000', '--train_reviews 2000 --pooling mean', ('r', 'p')),
      # The same with twice the fine-tuning steps: halves_mean_labels2000_p_s1 was still rising
      # (a random encoder fits its 2,000 reviews in 300).
      **_seeded_starts('halves_mean_ft600_labels2000', '--train_reviews 2000 --pooling mean', ('p',),
                       ft_steps=600),
      # plateau_local4's encoder fine-tuned on the mean of its sequence output (and a random one),
      # and at a third of the learning rate, since it fits its reviews sooner than a random one
      # and generalizes worse (a random one is local4_labels2000_r).
      **_seeded_starts('local4_mean_labels2000', '--local_window 4 --train_reviews 2000 --pooling mean',
                       ('r', 'p')),
      **_seeded_starts('local4_lr1e4_labels2000', '--local_window 4 --train_reviews 2000 --ft_lr 1e-4',
                       ('p',)),
      # From mlm_halves_local4's encoder, through [CLS] and through the mean of the sequence
      # output (a random one is local4_labels2000_r and local4_mean_labels2000_r).
      **_seeded_starts('masked_halves_labels2000', '--local_window 4 --train_reviews 2000', ('p',)),
      **_seeded_starts('masked_halves_mean_labels2000',
                       '--local_window 4 --train_reviews 2000 --pooling mean', ('p',)),
      # From small_local4_sampled's encoder (half the width) and from a random one of its size.
      **_seeded_starts('small_local4_labels2000', '--hidden 64 --inter 256 --local_window 4 --train_reviews 2000',
                       ('r', 'p')),
      # From sampled_softmax_local4's encoder (a random one is local4_labels2000_r).
      **_seeded_starts('sampled_local4_labels2000', '--local_window 4 --train_reviews 2000', ('p',)),
      # From a random encoder with token embeddings counted from co-occurrences (see embed), with
      # global attention and with the local first layer (random ones: labels2000_r and
      # local4_labels2000_r).
      **_seeded_starts('labels2000', '--train_reviews 2000', ('svd',)),
      **_seeded_starts('local4_labels2000', '--local_window 4 --train_reviews 2000', ('svd',)),
      # The same with the token embeddings frozen (see _configure).
      **_seeded_starts('frozen_labels2000', '--train_reviews 2000 --freeze_tokens 1', ('svd',)),
      # From mlm_from_svd's encoder: masked-LM from those token embeddings.
      **_seeded_starts('svd_mlm_labels2000', '--train_reviews 2000', ('p',)),
  }


VARIANTS.update(_few_label_variants())
# From mlm_sentiment's encoder, fine-tuned on all of train as r_cls from a random one: its masking
# weighs train's labels of words, so a few-label variant would know more labels than it fits.
VARIANTS.update(_seeded_starts('sentiment_all_labels', '', ('p',), ft_steps=900))
# The few-label test of it: masking weighs only the labels of the 2,000 reviews that fine-tuning
# fits (both seeds fit the same ones), from a random encoder and from that one's.
VARIANTS['mlm_sentiment_labels2000'] = VARIANTS['mlm_sentiment'] + ' --train_reviews 2000'
VARIANTS.update(_seeded_starts('sentiment_labels2000', '--train_reviews 2000 --label_seed 0', ('r', 'p')))
# Counted token embeddings under random layers, fine-tuned on all of train with the n-gram part
# as nbsvm_r (seeds 0-2) from random ones: does their few-label gain survive the labels and the blend?
VARIANTS.update(_seeded_starts('ngrams_all_labels', '--ngram_buckets 1048576 --separate_losses 1', ('svd',),
                               ft_steps=900))


def export(transformed_examples: str, npz_path: str) -> None:
  """Writes the token ids and labels of each split of a Transform output to `npz_path`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from modules import features  # pylint: disable=import-outside-toplevel
  arrays = {}
  for split_dir in sorted(pathlib.Path(transformed_examples).glob('Split-*')):
    split = split_dir.name[len('Split-'):]
    files = sorted(str(path) for path in split_dir.glob('*.gz'))
    first = next(iter(tf.data.TFRecordDataset(files[:1], compression_type='GZIP')))
    length = len(tf.train.Example.FromString(first.numpy()).features.feature[
        features.TOKEN_IDS_KEY].int64_list.value)
    spec = {features.TOKEN_IDS_KEY: tf.io.FixedLenFeature([length], tf.int64),
            features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    # The n-gram part's ids, without padding: rows of varying length.
    spec[features.NGRAM_IDS_KEY] = tf.io.FixedLenFeature([features.MAX_NGRAMS_PER_REVIEW], tf.int64)
    batches = list(tf.data.TFRecordDataset(files, compression_type='GZIP').batch(4096)
                   .map(lambda records: tf.io.parse_example(records, spec)).as_numpy_iterator())
    arrays[f'{split}_ids'] = np.concatenate([b[features.TOKEN_IDS_KEY] for b in batches]).astype(np.uint16)
    arrays[f'{split}_labels'] = np.concatenate([b[features.LABEL_KEY] for b in batches]).astype(np.int8)
    ngrams = np.concatenate([b[features.NGRAM_IDS_KEY] for b in batches])
    arrays[f'{split}_ngram_values'] = ngrams[ngrams != features.PAD_ID].astype(np.uint32)
    arrays[f'{split}_ngram_lengths'] = (ngrams != features.PAD_ID).sum(1).astype(np.int32)
  np.savez_compressed(npz_path, **arrays)


def _import_models():
  """modules.models and features; without TensorFlow, only the BERT parts of keras_hub load
  (its top-level import needs TensorFlow)."""
  if importlib.util.find_spec('tensorflow') is None:
    package = types.ModuleType('keras_hub')
    package.__path__ = list(importlib.util.find_spec('keras_hub').submodule_search_locations)
    sys.modules['keras_hub'] = package
    from keras_hub.src.layers.modeling.masked_lm_head import MaskedLMHead  # pylint: disable=import-outside-toplevel
    from keras_hub.src.models.bert.bert_backbone import BertBackbone  # pylint: disable=import-outside-toplevel
    package.models = types.SimpleNamespace(BertBackbone=BertBackbone)
    package.layers = types.SimpleNamespace(MaskedLMHead=MaskedLMHead)
  from modules import features, models  # pylint: disable=import-outside-toplevel
  return features, models


def _mask(ids, rng, vocabulary_size, features, predictions, weights=None):
  """BERT masking of a [reviews, length] id array, as Transform does it; with `weights` (one per
  token id), each review's masked tokens are drawn in proportion to their weights instead of
  uniformly (Efraimidis & Spirakis 2006: the largest of each token's uniform draw to the power
  1 / its weight)."""
  real = (ids >= features.NUM_SPECIAL_TOKENS) | (ids == features.UNK_ID)
  selected = np.clip(np.round(real.sum(1) * features.MASK_SELECTION_RATE), 1, predictions)
  draws = rng.random(ids.shape)
  if weights is not None:
    draws = draws ** (1 / weights[ids])
  scores = np.where(real, draws, -1.0)
  positions = np.argsort(-scores, axis=1)[:, :predictions]
  in_use = ((np.arange(predictions)[None] < selected[:, None])
            & (np.take_along_axis(scores, positions, 1) >= 0))
  positions = np.where(in_use, positions, 0)
  labels = np.take_along_axis(ids, positions, 1) * in_use
  action = rng.random(positions.shape)
  replacement = np.where(
      action < features.MASK_TOKEN_RATE, features.MASK_ID,
      np.where(action < features.MASK_TOKEN_RATE + features.RANDOM_TOKEN_RATE,
               rng.integers(features.NUM_SPECIAL_TOKENS, vocabulary_size, positions.shape), labels))
  masked = ids.copy()
  rows = np.broadcast_to(np.arange(len(ids))[:, None], positions.shape)
  masked[rows[in_use], positions[in_use]] = replacement[in_use]
  return {'token_ids': masked, 'mask_positions': positions}, labels, in_use.astype('float32')


# The pseudo-count added to each token's count in positive and in negative reviews before their
# ratio is taken: a token seen 3 times, all in positive reviews, weighs log(13 / 10) = 0.26 and
# not log(4 / 1) = 1.39 (both classes hold about as many tokens).
_SENTIMENT_PSEUDO_COUNT = 10


def _sentiment_weights(ids, labels, vocabulary_size: int, floor: float):
  """Per token id, its masking weight for `run --mask_sentiment FLOOR`: FLOOR + the absolute
  log-ratio of its share of the tokens of the labeled positive reviews (all of train, or
  --train_reviews of it) to its share of the negative ones' (counts smoothed by
  _SENTIMENT_PSEUDO_COUNT). Masking then picks the words that carry a
  review's sentiment (as SKEP's sentiment masking, Tian et al. 2020), which masked-LM can only
  predict from the rest of the review's sentiment: a task that needs review-level features,
  taught on every review of train+unsup by the labeled reviews' labels of words, not of reviews."""
  return floor + np.abs(_log_count_ratios(ids, labels, vocabulary_size, _SENTIMENT_PSEUDO_COUNT))


def _log_count_ratios(values, labels, size: int, pseudo_count: float):
  """Per id in [0, `size`): the log of its share of the `values` in positive rows less that of
  its share in negative ones, each count plus `pseudo_count`. `labels` holds one label per row
  of `values` (per value, when they are flat)."""
  counts = [pseudo_count + np.bincount(values[labels == value].ravel(), minlength=size) for value in (1, 0)]
  return np.log(counts[0] / counts[0].sum()) - np.log(counts[1] / counts[1].sum())


# The spread of keras-hub's initial embeddings (a truncated normal, sd 0.02), which embeddings
# set from elsewhere are scaled to, so that the embedding layer norm weighs them as random ones.
_INITIAL_EMBEDDING_SD = 0.02


def embed(npz_path: str, out_path: str, width: int, window: int, vocab: int) -> None:
  """Token embeddings from counts alone (44 s on a 2-core CPU): the truncated SVD of the positive
  pointwise mutual information of tokens within `window` of each other in train+unsup (Levy,
  Goldberg & Dagan 2015: context counts smoothed to the power 0.75, the singular vectors
  weighted by the square root of the singular values), each row then scaled to the norm of
  keras-hub's initial spread. Rows of special tokens and of tokens never seen are 0 (`run
  --tokens` leaves those random). Writes a [vocabulary, `width`] float32 array."""
  import scipy.sparse  # pylint: disable=import-outside-toplevel
  import scipy.sparse.linalg  # pylint: disable=import-outside-toplevel
  features, _ = _import_models()
  data = np.load(npz_path)
  ids = np.concatenate([data['train_ids'], data['unsup_ids']]).astype('int64')
  vocabulary_size = min(vocab, int(ids.max()) + 1)
  ids = np.where(ids >= vocabulary_size, features.UNK_ID, ids)
  counts = scipy.sparse.csr_matrix((vocabulary_size, vocabulary_size), dtype='float64')
  for offset in range(1, window + 1):
    left, right = ids[:, :-offset].ravel(), ids[:, offset:].ravel()
    words = (left >= features.NUM_SPECIAL_TOKENS) & (right >= features.NUM_SPECIAL_TOKENS)
    pairs = scipy.sparse.coo_matrix((np.ones(words.sum()), (left[words], right[words])),
                                    shape=counts.shape).tocsr()
    counts = counts + pairs + pairs.T
  counts = counts.tocoo()
  rows, contexts = np.asarray(counts.sum(1)).ravel(), np.asarray(counts.sum(0)).ravel() ** 0.75
  pmi = np.log(counts.data * contexts.sum() / (rows[counts.row] * contexts[counts.col]))
  positive = pmi > 0
  ppmi = scipy.sparse.csr_matrix((pmi[positive], (counts.row[positive], counts.col[positive])),
                                 shape=counts.shape)
  vectors, values, _ = scipy.sparse.linalg.svds(ppmi, k=width, random_state=0)
  vectors = vectors * np.sqrt(values)
  norms = np.linalg.norm(vectors, axis=1, keepdims=True)
  scaled = np.where(norms > 0, vectors / np.maximum(norms, 1e-12) * _INITIAL_EMBEDDING_SD * np.sqrt(width), 0)
  scaled[:features.NUM_SPECIAL_TOKENS] = 0
  np.save(out_path, scaled.astype('float32'))
  print(f'{out_path}: {vocabulary_size} tokens x {width}, {ppmi.nnz:,} positive PMI pairs', file=sys.stderr)


def _set_token_embeddings(encoder, path: str) -> None:
  """Sets the encoder's token embeddings to `embed`'s, where they are not 0."""
  given = np.load(path)
  tokens = encoder.token_embedding.embeddings
  if given.shape != tuple(tokens.shape):
    sys.exit(f'{path}: embeddings of shape {given.shape}, the encoder takes {tuple(tokens.shape)}')
  tokens.assign(np.where(np.any(given != 0, axis=1, keepdims=True), given, np.asarray(tokens)))


def _init_positions_sinusoidally(encoder) -> None:
  """Sets the encoder's position embeddings to sines and cosines of the position (Vaswani et
  al.) instead of random values, scaled to the spread of keras-hub's initializer (sd 0.02): a
  fixed offset between positions is then a rotation, which attention can find at once."""
  embeddings = encoder.position_embedding.position_embeddings
  length, width = embeddings.shape
  angles = np.arange(length)[:, None] / 10_000 ** (2 * np.arange(width // 2)[None] / width)
  waves = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # sd 1/sqrt(2)
  embeddings.assign((waves * _INITIAL_EMBEDDING_SD * np.sqrt(2)).astype('float32'))


def _normalize_first(encoder) -> None:
  """Makes the encoder pre-LN: each transformer layer normalizes its sublayers' inputs instead
  of their residual sums (Xiong et al. 2020), so the embeddings reach the output unnormalized.
  keras-hub reads the flag at call time; the masked-LM head and the pooler normalize or squash
  what they read."""
  for layer in encoder.transformer_layers:
    layer.normalize_first = True


def _attend_locally_first(encoder, window: int) -> None:
  """A locality prior: the encoder's first transformer layer attends only to the tokens within
  `window` positions of each token (the later layers to all). A random encoder's attention is
  near uniform, so at the first step its first layer already mixes each token with its
  neighbours instead of with the whole review."""
  import keras  # pylint: disable=import-outside-toplevel
  layer = encoder.transformer_layers[0]
  call = layer.call

  def local_call(inputs, padding_mask=None, attention_mask=None, **kwargs):
    positions = keras.ops.arange(keras.ops.shape(inputs)[1])
    band = keras.ops.abs(positions[:, None] - positions[None]) <= window
    band = keras.ops.broadcast_to(band[None], (keras.ops.shape(inputs)[0], *band.shape))
    if attention_mask is not None:
      band = keras.ops.logical_and(band, attention_mask)
    return call(inputs, padding_mask=padding_mask, attention_mask=band, **kwargs)
  layer.call = local_call


def _set_call_time_options(encoder, pre_ln: int, local_window: int) -> None:
  """What the encoder's saved config does not hold: pre-LN and the local first layer."""
  if pre_ln:
    _normalize_first(encoder)
  if local_window:
    _attend_locally_first(encoder, local_window)


def _configure(encoder, args) -> None:
  """`run`'s options that an encoder's config does not hold: pre-LN, the local first layer, and
  token embeddings frozen (`--freeze_tokens`: Adam moves each weight by about the learning rate
  a step, 3e-4 against embeddings of spread 0.02, so fine-tuning soon rewrites the embeddings of
  the words its reviews hold and leaves the others where they started)."""
  _set_call_time_options(encoder, args.pre_ln, args.local_window)
  encoder.token_embedding.trainable = not args.freeze_tokens


# The parts of an encoder that hold its embeddings; `--keep embeddings` takes only these from
# the pretrained encoder and leaves the transformer layers and the pooler random.
_EMBEDDING_LAYERS = ('token_embedding', 'position_embedding', 'segment_embedding', 'embeddings_layer_norm')


def _sizes(encoder) -> dict:
  """The size settings of `models.build_encoder`'s config that built `encoder`."""
  return {'num_layers': encoder.num_layers, 'num_heads': encoder.num_heads,
          'hidden_dim': encoder.hidden_dim, 'intermediate_dim': encoder.intermediate_dim}


def _transfer(pretrained, encoder, keep: str, share: float) -> None:
  """Copies the pretrained encoder's weights into `encoder` (same sizes, the dropout this
  variant fine-tunes with): all of them, only the embeddings', all but the token
  embedding's (which stays random), or all of them with the token embedding's mean row taken
  from every row. A `share` below 1 shrinks and perturbs them (Ash & Adams 2020, against a
  warm start that fits sooner and generalizes worse): each copied weight becomes `share` x the
  pretrained one + (1 - `share`) x the random one it replaces."""
  if keep == 'embeddings':
    for name in _EMBEDDING_LAYERS:
      _blend(getattr(pretrained, name), getattr(encoder, name), share)
    return
  random_tokens = encoder.token_embedding.get_weights()
  _blend(pretrained, encoder, share)
  if keep == 'all_but_tokens':
    encoder.token_embedding.set_weights(random_tokens)
  elif keep == 'all_centered':  # The direction every token shares, left out.
    tokens, = encoder.token_embedding.get_weights()
    encoder.token_embedding.set_weights([tokens - tokens.mean(0)])


def _blend(source, target, share: float) -> None:
  """Sets each weight of `target` to `share` x `source`'s + (1 - `share`) x its own."""
  target.set_weights([share * theirs + (1 - share) * own
                      for theirs, own in zip(source.get_weights(), target.get_weights())])


# ELECTRA's weight of the detector's loss beside the generator's (Clark et al. 2020).
_DETECTOR_LOSS_WEIGHT = 50.0


def _replaced_token_detector(keras, models, features, encoder, predictions: int, seed: int):
  """ELECTRA's pretraining (Clark et al. 2020): a generator half the encoder's width learns
  masked-LM, its samples replace the masked tokens, and the encoder learns to tell at every
  real token whether it was replaced: a loss on every token instead of on 15% of them.

  Inputs: the masked ids and positions of `_mask`, and `clean_ids` (the review unmasked).
  Outputs: `generator`, its masked-LM logits; `detector`, [batch, length, 3]: the encoder's
  logit that each token was replaced, whether it was, and whether it is a real token.
  """

  class Corrupt(keras.layers.Layer):
    """Puts a sample of the generator's logits at each masked position of the clean ids."""

    def __init__(self, **kwargs):
      super().__init__(**kwargs)
      self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits, clean_ids, positions, labels):
      sampled = keras.ops.reshape(self._sample(keras.ops.stop_gradient(logits)), keras.ops.shape(positions))
      in_use = keras.ops.cast(keras.ops.not_equal(labels, features.PAD_ID), 'int64')
      at_position = keras.ops.one_hot(positions, clean_ids.shape[1], dtype='int64') * in_use[..., None]
      hit = keras.ops.sum(at_position, 1)
      corrupted = (1 - hit) * clean_ids + keras.ops.sum(at_position * sampled[..., None], 1)
      replaced = keras.ops.cast(keras.ops.not_equal(corrupted, clean_ids), 'float32')
      real = keras.ops.cast(keras.ops.not_equal(clean_ids, features.PAD_ID), 'float32')
      return corrupted, replaced, real

    def _sample(self, logits):
      """One token per row of [..., vocabulary] logits, drawn as a block of the vocabulary, then
      a token in it: random numbers for 2 x sqrt(vocabulary) tokens per row instead of all of them
      (drawing from all 20,000 took 3.5 s of an 8.3 s training step on a 2-core CPU)."""
      vocabulary_size = logits.shape[-1]
      block = int(np.ceil(np.sqrt(vocabulary_size)))
      blocks = -(-vocabulary_size // block)
      flat = keras.ops.reshape(logits, (-1, vocabulary_size))
      flat = keras.ops.pad(flat, ((0, 0), (0, blocks * block - vocabulary_size)), constant_values=-1e9)
      grouped = keras.ops.reshape(flat, (-1, blocks, block))
      chosen = keras.random.categorical(keras.ops.logsumexp(grouped, -1), 1, seed=self.seed_generator,
                                        dtype='int64')
      in_block = keras.ops.squeeze(keras.ops.take_along_axis(grouped, chosen[:, :, None], axis=1), 1)
      offset = keras.random.categorical(in_block, 1, seed=self.seed_generator, dtype='int64')
      return chosen[:, 0] * block + offset[:, 0]

  generator = models.build_encoder(encoder.vocabulary_size, encoder.max_sequence_length, {
      'num_layers': encoder.num_layers, 'num_heads': 1, 'hidden_dim': encoder.hidden_dim // 2,
      'intermediate_dim': encoder.intermediate_dim // 2, 'dropout': 0.0})
  generator_lm = models.build_masked_lm(generator, predictions, tie_word_embeddings=True)
  length = encoder.max_sequence_length
  inputs = {features.TOKEN_IDS_KEY: keras.Input((length,), dtype='int64', name=features.TOKEN_IDS_KEY),
            models.MASK_POSITIONS_INPUT: keras.Input((predictions,), dtype='int64',
                                                     name=models.MASK_POSITIONS_INPUT),
            'clean_ids': keras.Input((length,), dtype='int64', name='clean_ids'),
            'labels': keras.Input((predictions,), dtype='int64', name='labels')}
  logits = generator_lm({name: inputs[name] for name in (features.TOKEN_IDS_KEY, models.MASK_POSITIONS_INPUT)})
  corrupted, replaced, real = Corrupt(name='corrupt')(
      logits, inputs['clean_ids'], inputs[models.MASK_POSITIONS_INPUT], inputs['labels'])
  sequence = models._encode(encoder, corrupted)['sequence_output']  # pylint: disable=protected-access
  detector_logits = keras.layers.Dense(1, name='detector_logit')(sequence)
  detector = keras.layers.Concatenate(name='detector')(
      [detector_logits, replaced[..., None], real[..., None]])
  # Named layers: Keras matches losses and metrics to outputs by their layers' names.
  generator_logits = keras.layers.Identity(name='generator')(logits)
  return keras.Model(inputs, {'generator': generator_logits, 'detector': detector})


def _detector_loss(unused_labels, detector):
  """Binary cross-entropy of `_replaced_token_detector`'s detector output, over real tokens."""
  import keras  # pylint: disable=import-outside-toplevel
  logits, replaced, real = detector[..., 0], detector[..., 1], detector[..., 2]
  return _masked_mean(keras.ops.binary_crossentropy(replaced, logits, from_logits=True), real)


def _replaced_recall(unused_labels, detector):
  """The share of replaced tokens whose detector logit is above 0."""
  import keras  # pylint: disable=import-outside-toplevel
  return _masked_mean(keras.ops.cast(detector[..., 0] > 0, 'float32'), detector[..., 1])


def _sampled_masked_lm(keras, models, features, encoder, masked_lm, negatives: int, seed: int):
  """`masked_lm` trained on a sampled softmax (Jean et al. 2015): each masked token's
  logit against those of `negatives` tokens drawn once per batch, log-uniformly over the ids
  (Transform's vocabulary runs from the most frequent token down), each logit less the log of
  its expected draws, instead of against all 20,000. The full softmax costs about 0.5 s of a
  step at any width: on a 2-core CPU (fits of 20 steps of 64, local first layer), a step of the
  default encoder took 1.47 s with it and 0.98 s with 1,024 sampled tokens; at half the width,
  1.0 and 0.5 s.

  Inputs: `masked_lm`'s and `labels`, the masked tokens. Output: [batch, predictions], each
  prediction's sampled cross-entropy (`_sampled_loss`). `masked_lm` itself, sharing every weight,
  gives the full softmax's masked-token accuracy."""
  head = masked_lm.get_layer('masked_lm_head')
  predictions = masked_lm.output.shape[1]
  vocabulary_size = head.vocabulary_size
  log_range = float(np.log(vocabulary_size + 1))

  class SampledCrossEntropy(keras.layers.Layer):
    """Each prediction's cross-entropy over its own token and the batch's sampled ones."""

    def __init__(self, **kwargs):
      super().__init__(**kwargs)
      self.seed_generator = keras.random.SeedGenerator(seed)
      self.head = head  # Tracked, so that its weights train.

    def call(self, sequence, positions, labels):
      ops = keras.ops
      hidden = self.head.masked_hidden(sequence, positions)
      drawn = ops.floor(ops.exp(keras.random.uniform((negatives,), seed=self.seed_generator) * log_range)) - 1
      sampled = ops.cast(ops.clip(drawn, 0, vocabulary_size - 1), 'int64')
      embeddings = self.head.token_embedding.embeddings  # A row per token.
      bias = self.head._bias  # pylint: disable=protected-access

      def logits(vectors, ids):  # Less the log of each id's expected draws.
        ids_ = ops.cast(ids, 'float32')
        expected = negatives * ops.log((ids_ + 2) / (ids_ + 1)) / log_range
        return vectors + ops.take(bias, ids) - ops.log(expected)

      own = logits(ops.sum(hidden * ops.take(embeddings, labels, axis=0), -1), labels)
      others = logits(ops.einsum('bpd,kd->bpk', hidden, ops.take(embeddings, sampled, axis=0)), sampled)
      others = ops.where(ops.equal(labels[..., None], sampled), -1e9, others)  # Drawn own tokens.
      return ops.logsumexp(ops.concatenate([own[..., None], others], -1), -1) - own

  inputs = {features.TOKEN_IDS_KEY: keras.Input((encoder.max_sequence_length,), dtype='int64',
                                                name=features.TOKEN_IDS_KEY),
            **{name: keras.Input((predictions,), dtype='int64', name=name)
               for name in (models.MASK_POSITIONS_INPUT, 'labels')}}
  sequence = models._encode(encoder, inputs[features.TOKEN_IDS_KEY])['sequence_output']  # pylint: disable=protected-access
  return keras.Model(inputs, SampledCrossEntropy(name='sampled_cross_entropy')(
      sequence, inputs[models.MASK_POSITIONS_INPUT], inputs['labels']))


def _sampled_loss(unused_labels, cross_entropy):
  """`_sampled_masked_lm`'s output is its loss already."""
  return cross_entropy


# SimCLR's temperature of the similarities (Chen et al. 2020).
_HALVES_TEMPERATURE = 0.1


def _middle(ids, features):
  """[reviews, 1]: the position where each review's second half starts."""
  return 1 + ((ids != features.PAD_ID).sum(1, keepdims=True) - 1) // 2


def _halves(ids, features):
  """Each review as two views that keep every token's position: [CLS] and the first half of
  its other tokens, and [CLS] and the second half ([SEP] included); the other half is [PAD]."""
  middle = _middle(ids, features)
  positions = np.arange(ids.shape[1])[None]
  return {'first': np.where(positions < middle, ids, features.PAD_ID),
          'second': np.where((positions >= middle) | (positions == 0), ids, features.PAD_ID)}


def _halves_matcher(keras, models, encoder, predictions: int = 0, tie_word_embeddings: bool = True):
  """Contrastive pretraining on halves of reviews (as DeCLUTR, Giorgi et al. 2021, spans): the
  projected, normalized pooled [CLS] output of one half must pick out the other half of the
  same review among the batch's. A review's sentiment runs through both of its halves, so this
  objective rewards review-level features, which masked-LM's did not give (linear probe).
  Output: the [batch, batch] similarities of first halves (rows) to second halves.

  With `predictions` (`--objective mlm_halves`) the halves come masked, with their masked
  positions as `first_positions` and `second_positions`, and the encoder learns masked-LM on
  them in the same passes: outputs `halves`, and `first_lm` and `second_lm`, the masked-LM
  head's logits at each half's masked positions."""
  length = encoder.max_sequence_length
  views = ('first', 'second')
  inputs = {name: keras.Input((length,), dtype='int64', name=name) for name in views}
  projection = keras.layers.Dense(encoder.hidden_dim, name='projection')
  if predictions:
    inputs.update({f'{view}_positions': keras.Input((predictions,), dtype='int64', name=f'{view}_positions')
                   for view in views})
    head = models.build_masked_lm(encoder, predictions, tie_word_embeddings).get_layer('masked_lm_head')
  outputs, embedded = {}, {}
  for view in views:
    encoded = models._encode(encoder, inputs[view])  # pylint: disable=protected-access
    embedded[view] = keras.ops.normalize(projection(encoded['pooled_output']), axis=-1)
    if predictions:
      outputs[f'{view}_lm'] = keras.layers.Identity(name=f'{view}_lm')(
          head(encoded['sequence_output'], mask_positions=inputs[f'{view}_positions']))
  similarity = keras.ops.matmul(embedded['first'], keras.ops.transpose(embedded['second']))
  outputs['halves'] = keras.layers.Identity(name='halves')(similarity / _HALVES_TEMPERATURE)
  return keras.Model(inputs, outputs if predictions else outputs['halves'])


def _masked_lm_and_sentiment(keras, models, features, encoder, predictions: int, tie_word_embeddings: bool):
  """Masked-LM and a teacher's sentiment (`--objective mlm_distill`) in the same encoder pass
  over the masked ids: outputs `masked_lm`, the masked-LM head's logits at `mask_positions`, and
  `sentiment`, a logit from the pooled [CLS] output, as the classifier's encoder part computes
  it. The sentiment head costs a [batch, width] dense layer beside the masked-LM step."""
  length = encoder.max_sequence_length
  token_ids = keras.Input((length,), dtype='int64', name=features.TOKEN_IDS_KEY)
  positions = keras.Input((predictions,), dtype='int64', name=models.MASK_POSITIONS_INPUT)
  head = models.build_masked_lm(encoder, predictions, tie_word_embeddings).get_layer('masked_lm_head')
  encoded = models._encode(encoder, token_ids)  # pylint: disable=protected-access
  outputs = {'masked_lm': keras.layers.Identity(name='masked_lm')(
                 head(encoded['sequence_output'], mask_positions=positions)),
             'sentiment': keras.layers.Dense(1, name='sentiment')(encoded['pooled_output'])}
  return keras.Model({features.TOKEN_IDS_KEY: token_ids, models.MASK_POSITIONS_INPUT: positions}, outputs)


def _same_review(similarity):
  """The column of each row's own other half in `_halves_matcher`'s similarities: the diagonal."""
  import keras  # pylint: disable=import-outside-toplevel
  return keras.ops.arange(keras.ops.shape(similarity)[0])


def _halves_loss(unused_labels, similarity):
  """Cross-entropy of picking each review's other half, both ways (InfoNCE)."""
  import keras  # pylint: disable=import-outside-toplevel
  own = _same_review(similarity)
  return 0.5 * (keras.losses.sparse_categorical_crossentropy(own, similarity, from_logits=True)
                + keras.losses.sparse_categorical_crossentropy(
                    own, keras.ops.transpose(similarity), from_logits=True))


def _halves_accuracy(unused_labels, similarity):
  """The share of first halves whose most similar second half is their own."""
  import keras  # pylint: disable=import-outside-toplevel
  return keras.ops.cast(keras.ops.equal(keras.ops.argmax(similarity, -1), _same_review(similarity)),
                        'float32')


def _masked_mean(values, mask):
  """The mean of `values` where `mask` is 1 (0 where it is 0 throughout)."""
  import keras  # pylint: disable=import-outside-toplevel
  return keras.ops.sum(values * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)


def _ngram_log_ratios(data, buckets: int):
  """Per n-gram bucket, its naive-Bayes log-count ratio, as Transform computes it from `train`."""
  labels = np.repeat(data['train_labels'], data['train_ngram_lengths'])
  return _log_count_ratios(data['train_ngram_values'], labels, buckets, 1)


def _ngram_features(data, features, buckets: int) -> dict:
  """Per labeled split, the n-gram part's ids and their naive-Bayes log-count ratios."""
  ids = {}
  for split in ('train', 'eval'):
    lengths = data[f'{split}_ngram_lengths']
    dense = np.zeros((len(lengths), features.MAX_NGRAMS_PER_REVIEW), np.int64)
    dense[np.arange(features.MAX_NGRAMS_PER_REVIEW)[None] < lengths[:, None]] = data[f'{split}_ngram_values']
    ids[split] = dense
  log_ratios = _ngram_log_ratios(data, buckets)
  return {split: {features.NGRAM_IDS_KEY: split_ids,
                  features.NGRAM_LOG_RATIOS_KEY: (log_ratios[split_ids] * (split_ids != 0)).astype('float32')}
          for split, split_ids in ids.items()}


def _classifier(keras, models, encoder, args):
  """The pipeline's [CLS] classifier, one on the mean of the sequence output, or the n-gram
  part alone."""
  if args.ngrams_only:
    encoder.trainable = False
    model = models.build_classifier(encoder, 0.1, args.ngram_buckets)
    head = model.get_layer('sentiment_logit')
    head.set_weights([np.zeros_like(weight) for weight in head.get_weights()])
    head.trainable = False
    return model
  if args.separate_losses:  # Outputs [encoder logit, n-gram logit], each with its own loss.
    return models.part_logits(models.build_classifier(encoder, 0.1, args.ngram_buckets))
  if args.pooling == 'cls':
    return models.build_classifier(encoder, 0.1, args.ngram_buckets)
  token_ids = keras.Input((encoder.max_sequence_length,), dtype='int64', name='token_ids')
  sequence = models._encode(encoder, token_ids)['sequence_output']  # pylint: disable=protected-access
  real = keras.ops.cast(keras.ops.not_equal(token_ids, 0), sequence.dtype)[..., None]
  pooled = keras.ops.sum(sequence * real, 1) / keras.ops.sum(real, 1)
  return keras.Model({'token_ids': token_ids}, keras.layers.Dense(1)(keras.layers.Dropout(0.1)(pooled)))


def _pretrainer(keras, models, features, encoder, predictions: int, args):
  """The compiled model that pretrains `encoder`: masked-LM (on a sampled softmax with
  `--negatives`), ELECTRA's (`--objective rtd`), matching halves of reviews (`--objective
  halves`), both of masked halves (`mlm_halves`) or the classifier on a teacher's soft labels
  (`distill`), or masked-LM and that teacher's labels at once (`mlm_distill`); and the
  compiled model that measures it (the
  same one, but for the sampled softmax's: the masked-LM model with the full softmax)."""
  optimizer = models.optimizer(args.pre_lr, args.pre_steps, 0.1, 0.01)
  jit_compile = True if args.jit else 'auto'
  if args.objective == 'distill':  # The [CLS] classifier without an n-gram part, on soft targets.
    student = models.build_classifier(encoder, 0.1)
    student.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy(from_logits=True),
                    metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name='acc')],
                    jit_compile=jit_compile)
    return student, student
  if args.objective == 'mlm':
    masked_lm = models.build_masked_lm(encoder, predictions, tie_word_embeddings=not args.untied)
    masked_lm.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name='acc')],
                      jit_compile=jit_compile)
    if not args.negatives:
      return masked_lm, masked_lm
    sampled = _sampled_masked_lm(keras, models, features, encoder, masked_lm, args.negatives, args.seed)
    sampled.compile(optimizer=optimizer, loss=_sampled_loss, jit_compile=jit_compile)
    return sampled, masked_lm
  if args.objective == 'halves':
    matcher = _halves_matcher(keras, models, encoder)
    matcher.compile(optimizer=optimizer, loss=_halves_loss,
                    metrics=[keras.metrics.MeanMetricWrapper(_halves_accuracy, name='acc')],
                    jit_compile=jit_compile)
    return matcher, matcher
  if args.objective == 'mlm_distill':
    model = _masked_lm_and_sentiment(keras, models, features, encoder, predictions, not args.untied)
    model.compile(
        optimizer=optimizer,
        loss={'masked_lm': keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                      ignore_class=features.PAD_ID),
              'sentiment': keras.losses.BinaryCrossentropy(from_logits=True)},
        loss_weights={'masked_lm': 1.0, 'sentiment': args.distill_weight},
        metrics={'masked_lm': [keras.metrics.MeanMetricWrapper(_masked_accuracy, name='acc')],
                 'sentiment': [keras.metrics.BinaryAccuracy(threshold=0.0, name='acc')]},
        jit_compile=jit_compile)
    return model, model
  if args.objective == 'mlm_halves':  # The masked-LM loss per half, halved: one review's worth.
    matcher = _halves_matcher(keras, models, encoder, predictions, not args.untied)
    lm_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=features.PAD_ID)
    matcher.compile(
        optimizer=optimizer, loss={'first_lm': lm_loss, 'second_lm': lm_loss, 'halves': _halves_loss},
        loss_weights={'first_lm': 0.5, 'second_lm': 0.5, 'halves': 1.0},
        metrics={'first_lm': [keras.metrics.MeanMetricWrapper(_masked_accuracy, name='acc')],
                 'halves': [keras.metrics.MeanMetricWrapper(_halves_accuracy, name='acc')]},
        jit_compile=jit_compile)
    return matcher, matcher
  detector = _replaced_token_detector(keras, models, features, encoder, predictions, args.seed)
  detector.compile(
      optimizer=optimizer,
      loss={'generator': keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                    ignore_class=features.PAD_ID),
            'detector': _detector_loss},
      loss_weights={'generator': 1.0, 'detector': _DETECTOR_LOSS_WEIGHT},
      metrics={'generator': [keras.metrics.MeanMetricWrapper(_masked_accuracy, name='acc')],
               'detector': [keras.metrics.MeanMetricWrapper(_replaced_recall, name='replaced_recall')]},
      jit_compile=jit_compile)
  return detector, detector


def _masked_accuracy(labels, logits):
  """Masked-token accuracy over the positions in use (label not [PAD])."""
  import keras  # pylint: disable=import-outside-toplevel
  hits = keras.ops.cast(keras.ops.equal(keras.ops.argmax(logits, -1), labels), 'float32')
  return _masked_mean(hits, keras.ops.cast(keras.ops.not_equal(labels, 0), 'float32'))


def _pretraining_data(ids, rng, vocabulary_size, features, predictions: int, objective: str,
                      mask_weights=None):
  """Inputs, targets and sample weights (or None) of `_pretrainer`'s model for `ids`."""
  if objective == 'halves':
    return _halves(ids, features), np.zeros((len(ids), 1), 'float32'), None
  x, y, w = _mask(ids, rng, vocabulary_size, features, predictions, mask_weights)
  if objective in ('mlm', 'mlm_distill'):
    return x, y, w
  if objective == 'mlm_halves':  # Each half's masked positions; the other half's are unused (0).
    positions = x['mask_positions']
    in_first = positions < _middle(ids, features)
    inputs, targets = _halves(x['token_ids'], features), {'halves': np.zeros((len(ids), 1), 'float32')}
    for view, in_view in (('first', in_first), ('second', ~in_first)):
      inputs[f'{view}_positions'] = np.where(in_view, positions, 0)
      targets[f'{view}_lm'] = np.where(in_view, y, 0)
    return inputs, targets, None
  return ({**x, 'clean_ids': ids, 'labels': y},
          {'generator': y, 'detector': np.zeros((len(ids), 1, 1), 'float32')}, None)


# Per objective, the metric of pretraining's curve, and another it records (its name in the
# metrics, its key in the result) or None.
_CURVES = {'mlm': ('acc', None), 'halves': ('acc', None), 'distill': ('acc', None),
           'mlm_distill': ('masked_lm_acc', ('sentiment_acc', 'student')),
           'rtd': ('generator_acc', ('detector_replaced_recall', 'replaced_recall')),
           'mlm_halves': ('first_lm_acc', ('halves_acc', 'halves_matched'))}


# Columns of both teachers' features: `--teacher tokens` hashes into them, and `nbsvm` reads
# Transform's n-gram buckets, as many as the default preset's.
_TEACHER_BUCKETS = 2**20
# Per `--teacher`, the inverse regularization strength of its logistic regression, chosen on
# `eval`: tokens 89.2% at 10 (89.0%, 88.9% and 89.1% at 3, 30 and 100); nbsvm 91.8% at 0.1
# (91.4%, 91.5%, 91.7%, 91.5% and 91.4% at 0.03, 0.05, 0.3, 1 and 3).
_TEACHER_C = {'tokens': 10.0, 'nbsvm': 0.1}


def _bag_of_ngrams(ids, features):
  """`--teacher tokens`' features: each review's distinct token unigrams and bigrams (of the
  encoder's sequence), hashed into _TEACHER_BUCKETS columns of a sparse 0/1 matrix whose rows
  have unit length."""
  from scipy import sparse  # pylint: disable=import-outside-toplevel
  real = ids >= features.NUM_SPECIAL_TOKENS
  pairs = real[:, :-1] & real[:, 1:]
  bigrams = (ids[:, :-1] * 1_000_003 + ids[:, 1:]) % _TEACHER_BUCKETS
  columns = np.concatenate([np.where(real, ids, 0), np.where(pairs, bigrams, 0)], 1)
  rows = np.broadcast_to(np.arange(len(ids))[:, None], columns.shape)
  kept = np.concatenate([real, pairs], 1)
  matrix = sparse.csr_matrix((np.ones(kept.sum(), 'float32'), (rows[kept], columns[kept])),
                             shape=(len(ids), _TEACHER_BUCKETS))
  matrix.data[:] = 1.0  # Distinct n-grams: duplicates were summed.
  norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(1))).ravel()
  return sparse.diags(1 / np.maximum(norms, 1e-6)) @ matrix


def _nbsvm_features(data, split: str, log_ratios):
  """`--teacher nbsvm`'s features: the sparse [reviews, buckets] matrix of each review's
  distinct n-gram buckets (all its words, as Transform hashes them), each valued at its
  naive-Bayes log-count ratio: the classifier's n-gram part's input (NBSVM)."""
  from scipy import sparse  # pylint: disable=import-outside-toplevel
  lengths, values = data[f'{split}_ngram_lengths'], data[f'{split}_ngram_values'].astype(np.int64)
  rows = np.repeat(np.arange(len(lengths)), lengths)
  return sparse.csr_matrix((log_ratios[values].astype('float32'), (rows, values)),
                           shape=(len(lengths), len(log_ratios)))


def _teacher_features(data, ids, features, teacher: str) -> dict:
  """`teacher`'s sparse feature matrix of train+unsup (in that order) and of eval."""
  if teacher == 'tokens':
    return {'corpus': _bag_of_ngrams(np.concatenate([ids['train'], ids['unsup']]), features),
            'eval': _bag_of_ngrams(ids['eval'], features)}
  from scipy import sparse  # pylint: disable=import-outside-toplevel
  log_ratios = _ngram_log_ratios(data, _TEACHER_BUCKETS)
  return {'corpus': sparse.vstack([_nbsvm_features(data, split, log_ratios) for split in ('train', 'unsup')],
                                  format='csr'),
          'eval': _nbsvm_features(data, 'eval', log_ratios)}


def _distillation_targets(data, ids, labels, labeled, features, args, result):
  """Per review of train+unsup (in that order), the sentiment target of `--objective distill`
  and `mlm_distill`: its label
  for the `labeled` rows of train, else the probability that it is positive by `--teacher`, a
  logistic regression fitted on those labeled rows (its `eval` accuracy goes to `result`)."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  matrices = _teacher_features(data, ids, features, args.teacher)
  corpus = matrices['corpus']
  teacher = LogisticRegression(C=_TEACHER_C[args.teacher], max_iter=1000).fit(
      corpus[labeled], labels['train'][labeled])
  result['teacher_eval_acc'] = round(teacher.score(matrices['eval'], labels['eval']), 4)
  targets = teacher.predict_proba(corpus)[:, 1].astype('float32')
  targets[labeled] = labels['train'][labeled]
  return targets[:, None]


def _rows(arrays, rows):
  """The rows of an array, of each array of a dict, or None."""
  if isinstance(arrays, dict):
    return {key: array[rows] for key, array in arrays.items()}
  return None if arrays is None else arrays[rows]


def _labeled_rows(reviews: int, args):
  """The rows of train whose labels a run knows: --train_reviews of them, drawn by --label_seed
  (else by --seed), or all."""
  if not args.train_reviews:
    return np.arange(reviews)
  seed = args.seed if args.label_seed is None else args.label_seed
  return np.random.default_rng(seed).permutation(reviews)[:args.train_reviews]


# How many of the reviews fine-tuning fits on `run` scores after each epoch.
_FITTED_REVIEWS_CHECKED = 2000


def run(args) -> dict:
  """One variant: pretrain (unless --pre_steps 0), fine-tune, best eval accuracy."""
  import keras  # pylint: disable=import-outside-toplevel
  features, models = _import_models()
  keras.utils.set_random_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  data = np.load(args.data)
  ids = {key[:-4]: data[key].astype('int64') for key in data.files if key.endswith('_ids')}
  labels = {key[:-7]: data[key].astype('float32') for key in data.files if key.endswith('_labels')}
  if args.length:  # The first tokens of each review only, for pretraining and fine-tuning.
    ids = {split: split_ids[:, :args.length] for split, split_ids in ids.items()}
  length = ids['train'].shape[1]
  predictions = features.max_predictions(length)
  config = dict(num_layers=args.layers, num_heads=args.heads, hidden_dim=args.hidden,
                intermediate_dim=args.inter, dropout=args.pre_dropout)
  if args.encoder:  # Pretrained elsewhere, on the same Transform output's ids.
    pretrained = keras.saving.load_model(args.encoder)
    vocabulary_size = pretrained.vocabulary_size
    config.update(_sizes(pretrained))
    encoder = models.build_encoder(vocabulary_size, length, config)
    _transfer(pretrained, encoder, args.keep, args.pretrained_share)
    _configure(encoder, args)
  else:
    vocabulary_size = min(args.vocab, int(max(v.max() for v in ids.values())) + 1)
    encoder = models.build_encoder(vocabulary_size, length, config)
    if args.positions == 'sinusoid':
      _init_positions_sinusoidally(encoder)
    if args.tokens:
      _set_token_embeddings(encoder, args.tokens)
    _configure(encoder, args)
  ids = {k: np.where(v >= vocabulary_size, features.UNK_ID, v) for k, v in ids.items()}
  result = {**vars(args), 'curve': []}
  start = time.time()
  if args.pre_steps and not args.encoder:
    pretrainer, measurer = _pretrainer(keras, models, features, encoder, predictions, args)
    corpus = np.concatenate([ids['train'], ids['unsup']])
    labeled = _labeled_rows(len(labels['train']), args)
    weights = (_sentiment_weights(ids['train'][labeled], labels['train'][labeled], vocabulary_size,
                                  args.mask_sentiment) if args.mask_sentiment else None)
    if args.objective == 'distill':  # Soft targets; eval's own labels measure the student.
      x, w = {features.TOKEN_IDS_KEY: corpus}, None
      y = _distillation_targets(data, ids, labels, labeled, features, args, result)
      eval_x, eval_y, eval_w = {features.TOKEN_IDS_KEY: ids['eval']}, labels['eval'], None
    else:
      x, y, w = _pretraining_data(corpus, rng, vocabulary_size, features, predictions, args.objective,
                                  weights)
      eval_x, eval_y, eval_w = _pretraining_data(ids['eval'], np.random.default_rng(123), vocabulary_size,
                                                 features, predictions, args.objective, weights)
    if args.objective == 'mlm_distill':  # Unused slots hold [PAD], which the loss ignores.
      y = {'masked_lm': y, 'sentiment': _distillation_targets(data, ids, labels, labeled, features, args, result)}
      eval_y, w, eval_w = {'masked_lm': eval_y, 'sentiment': labels['eval'][:, None]}, None, None
    if args.negatives:  # The sampled softmax takes the masked tokens as an input.
      x = {**x, 'labels': y}
    sequences = args.pre_steps * args.bs
    order = np.concatenate([rng.permutation(len(corpus))
                            for _ in range(sequences // len(corpus) + 1)])[:sequences]
    for part in np.array_split(order, args.checks):
      pretrainer.fit(_rows(x, part), _rows(y, part), sample_weight=_rows(w, part),
                     batch_size=args.bs, verbose=0, shuffle=False)
      metrics = measurer.evaluate(eval_x, eval_y, sample_weight=eval_w, batch_size=256,
                                  verbose=0, return_dict=True)
      curve, also = _CURVES[args.objective]
      result['curve'].append(round(metrics[curve], 4))
      if also:
        result.setdefault(also[1], []).append(round(metrics[also[0]], 4))
      print(f'{args.name}: masked acc {result["curve"]} after {round(time.time() - start)} s '
            f'{metrics}', file=sys.stderr, flush=True)
    if args.save_encoder:  # For other variants' --encoder.
      encoder.save(args.save_encoder)
  result['pre_s'] = round(time.time() - start)
  if not args.ft_steps:  # Pretraining alone.
    return {**result, 'ft': [], 'best': None, 's': result['pre_s']}
  if args.ft_dropout is not None:
    weights = encoder.get_weights()
    encoder = models.build_encoder(vocabulary_size, length, {**config, 'dropout': args.ft_dropout})
    encoder.set_weights(weights)
    _configure(encoder, args)
  model = _classifier(keras, models, encoder, args)
  bce = keras.losses.BinaryCrossentropy(from_logits=True)
  loss, metric = bce, keras.metrics.BinaryAccuracy(threshold=0.0, name='acc')
  if args.separate_losses:  # Each part learns the labels alone; their logits add up.
    def separate(labels_, logits):
      return bce(labels_, logits[:, :1]) + bce(labels_, logits[:, 1:])

    def acc(labels_, logits):
      return keras.metrics.binary_accuracy(labels_, keras.ops.sum(logits, 1, keepdims=True), 0.0)
    loss, metric = separate, acc
  model.compile(optimizer=models.optimizer(args.ft_lr, args.ft_steps, 0.1, 0.01), loss=loss,
                metrics=[metric])
  inputs = {split: {features.TOKEN_IDS_KEY: ids[split]} for split in ('train', 'eval')}
  if args.ngram_buckets:
    for split, ngram_inputs in _ngram_features(data, features, args.ngram_buckets).items():
      inputs[split].update(ngram_inputs)
  if args.train_reviews:  # A labeled subset; the naive-Bayes ratios still count all of train.
    labeled = _labeled_rows(len(labels['train']), args)
    inputs['train'] = {k: v[labeled] for k, v in inputs['train'].items()}
    labels['train'] = labels['train'][labeled]
  sequences = args.ft_steps * args.bs
  order = np.concatenate([rng.permutation(len(labels['train']))
                          for _ in range(sequences // len(labels['train']) + 1)])[:sequences]
  # Accuracy on reviews it is fitted on too, to tell overfitting from slow fitting.
  fitted = {k: v[:_FITTED_REVIEWS_CHECKED] for k, v in inputs['train'].items()}
  result['ft'], result['ft_train'] = [], []
  for part in np.array_split(order, args.ft_epochs):
    model.fit({k: v[part] for k, v in inputs['train'].items()}, labels['train'][part],
              batch_size=args.bs, verbose=0, shuffle=False)
    for key, x, y in (('ft', inputs['eval'], labels['eval']),
                      ('ft_train', fitted, labels['train'][:_FITTED_REVIEWS_CHECKED])):
      result[key].append(round(model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)['acc'], 4))
    if args.separate_losses:
      _record_parts(model.predict(inputs['eval'], batch_size=256, verbose=0), labels['eval'], result)
  return {**result, 'best': max(result['ft']), 's': round(time.time() - start)}


def _record_parts(part_logits, labels, result) -> None:
  """Appends to `result` the eval accuracy of the encoder part (`ft_encoder`) and of the
  pipeline's blend of both parts (`ft_blend`): a logistic regression of the labels on the
  part logits, fitted on those same eval reviews as the ClassifierTrainer fits it."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  result.setdefault('ft_encoder', []).append(round(float(np.mean((part_logits[:, 0] > 0) == labels)), 4))
  blend = LogisticRegression(C=1.0).fit(part_logits, labels)
  result.setdefault('ft_blend', []).append(round(blend.score(part_logits, labels), 4))


def sweep(npz_path: str, results_path: str, prefix: str, encoder: str, tokens: str,
          save_encoders: str) -> None:
  """Runs every variant whose name starts with `prefix` as its own process, all at once; one
  JSON line each in `results_path`, written anew (earlier lines there are lost: give each batch
  of variants a file of its own and concatenate them). `encoder` fills the variants' {encoder},
  `tokens` their {tokens}; each variant that pretrains saves its encoder as
  `save_encoders`/NAME.keras when that folder is given."""
  chosen = {name: arguments for name, arguments in VARIANTS.items() if name.startswith(prefix)}
  for field, given, what in (('encoder', encoder, "--encoder PATH (a PretrainTrainer's encoder.keras)"),
                             ('tokens', tokens, "--tokens PATH (embed's .npy)")):
    needing = [name for name, arguments in chosen.items() if f'{{{field}}}' in arguments]
    if needing and not given:
      sys.exit(f'Variants {", ".join(needing)} start from {field}: pass {what}')
  threads = {'OMP_NUM_THREADS': '1'} if len(chosen) > 1 else {}  # One core each when several run.
  processes = {name: subprocess.Popen(
      [sys.executable, __file__, 'run', npz_path, '--name', name,
       *arguments.format(encoder=encoder, tokens=tokens).split(),
       *(['--save_encoder', os.path.join(save_encoders, f'{name}.keras')] if save_encoders else [])],
      stdout=subprocess.PIPE, env={**os.environ, **threads})
      for name, arguments in chosen.items()}
  with open(results_path, 'w') as out:
    for name, process in processes.items():
      lines = process.communicate()[0].decode().splitlines()
      out.write((lines[-1] if process.returncode == 0 else json.dumps({'name': name, 'failed': True})) + '\n')


def report(results_path: str) -> None:
  """Markdown table of the results, and the mean over seeds of the repeated variants."""
  results = [json.loads(line) for line in open(results_path)]
  rows = [f'# MLM pretraining sweep: {pathlib.Path(results_path).name}', '',
          'Accuracy on `eval` (held out from aclImdb train); masked acc: masked-token accuracy on',
          '`eval` after pretraining (electra: its generator\'s; contrast_halves: the share of first',
          'halves that pick out their own second half among 256; distill: the accuracy of the',
          'classifier learning its n-gram teacher, and of the teacher). r_ = random encoder, p_ = pretrained,',
          '_sN = seed N; labelsN: fine-tuned on N labeled reviews, p_ from `--encoder` (a pipeline',
          'run\'s, or a variant\'s saved by `sweep --save_encoders`), pemb from its embeddings alone,',
          'svd from token embeddings counted from co-occurrences (`embed`), frozen_ with them frozen;',
          f'train: accuracy on {_FITTED_REVIEWS_CHECKED:,} of the reviews fine-tuning fits on.', '',
          '| variant | pretraining steps | masked acc | fine-tuning eval acc per epoch | best |',
          '| --- | --- | --- | --- | --- |']
  groups = collections.defaultdict(list)
  for r in sorted(results, key=lambda r: r['name']):
    # Pretraining alone: the curve, a check after each equal part of the steps.
    masked = (r['curve'][-1] if r['ft'] else r['curve']) if r['curve'] else '-'
    if 'replaced_recall' in r:  # electra: the share of replaced tokens its encoder found.
      masked = f"{masked}; replaced tokens found {r['replaced_recall']}"
    if 'halves_matched' in r:  # mlm_halves: the share of first halves that found their own.
      masked = f"{masked}; halves matched {r['halves_matched']}"
    if 'teacher_eval_acc' in r:  # distill: the student's accuracy at each check, the teacher's.
      student = f"{masked}; student {r['student']}" if 'student' in r else f"student {r['curve']}"
      masked = f"{student}; teacher {r['teacher_eval_acc']}"
    steps = '`--encoder`' if r.get('encoder') else r['pre_steps']
    per_epoch = f"{r['ft']}; train {r['ft_train']}" if r.get('ft_train') else r['ft'] or '-'
    if 'ft_blend' in r:  # Each part with its own loss: the encoder's, and the blend's.
      per_epoch = f"{per_epoch}; encoder {r['ft_encoder']}; blend {r['ft_blend']}"
    rows.append(f"| {r['name']} | {steps} | {masked} | {per_epoch} | {r['best'] or '-'} |")
    if r['best'] is None:  # Pretraining alone.
      continue
    groups[r['name'].rsplit('_s', 1)[0] if r['name'][-3:-1] == '_s' else r['name']].append(r['best'])
  rows += ['', '| variant, over seeds | runs | mean best eval acc |', '| --- | --- | --- |']
  rows += [f'| {name} | {len(bests)} | {np.mean(bests):.4f} |' for name, bests in groups.items()
           if len(bests) > 1]
  pathlib.Path(results_path).with_suffix('.md').write_text('\n'.join(rows) + '\n')


def _frozen_features(encoder, ids, features, models, batch_size: int = 128) -> dict:
  """The encoder's [CLS] output, pooled output and mean over the real tokens, per review."""
  import keras  # pylint: disable=import-outside-toplevel
  parts = collections.defaultdict(list)
  for start in range(0, len(ids), batch_size):
    batch = ids[start:start + batch_size]
    outputs = models._encode(encoder, keras.ops.convert_to_tensor(batch))  # pylint: disable=protected-access
    real = batch != features.PAD_ID
    sequence = np.asarray(outputs['sequence_output'])
    parts['cls'].append(sequence[:, 0])
    parts['pooled'].append(np.asarray(outputs['pooled_output']))
    parts['mean'].append((sequence * real[..., None]).sum(1) / real.sum(1, keepdims=True))
  return {name: np.concatenate(values) for name, values in parts.items()}


def probe(npz_path: str, encoder_path: str, out_path: str, local_window: int = 0,
          random_seeds: int = 3, train_reviews: int = 5000) -> None:
  """Linear probe: a logistic regression on the frozen features of the pretrained encoder and of
  random ones of the same size (one per seed: their spread is the noise), trained on
  `train_reviews` of train, scored on eval. `local_window`: as `run --local_window`, for all."""
  import keras  # pylint: disable=import-outside-toplevel
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  from sklearn.preprocessing import StandardScaler  # pylint: disable=import-outside-toplevel
  features, models = _import_models()
  data = np.load(npz_path)
  rows = np.random.default_rng(0).choice(len(data['train_ids']), train_reviews, replace=False)
  splits = {'train': (data['train_ids'][rows].astype('int64'), data['train_labels'][rows]),
            'eval': (data['eval_ids'].astype('int64'), data['eval_labels'])}
  pretrained = keras.saving.load_model(encoder_path)
  config = {**_sizes(pretrained), 'dropout': 0.0}
  encoders = {'pretrained': pretrained}
  for seed in range(random_seeds):
    keras.utils.set_random_seed(seed)
    encoders[f'random, seed {seed}'] = models.build_encoder(
        pretrained.vocabulary_size, pretrained.max_sequence_length, config)
  for encoder in encoders.values():
    _set_call_time_options(encoder, pre_ln=0, local_window=local_window)
  first_layer = f', its first layer attending within {local_window} tokens' if local_window else ''
  lines = ['# Linear probe of frozen encoder features', '', f'Pretrained: `{encoder_path}`{first_layer}.',
           f'Logistic regression on standardized features of {train_reviews} `train` reviews, '
           'accuracy on `eval`.', '', '| encoder | features | eval accuracy |', '| --- | --- | --- |']
  for name, encoder in encoders.items():
    frozen = {split: _frozen_features(encoder, ids, features, models)
              for split, (ids, _) in splits.items()}
    for kind in frozen['train']:
      scaler = StandardScaler().fit(frozen['train'][kind])
      regression = LogisticRegression(max_iter=3000).fit(
          scaler.transform(frozen['train'][kind]), splits['train'][1])
      accuracy = regression.score(scaler.transform(frozen['eval'][kind]), splits['eval'][1])
      lines.append(f'| {name} | {kind} | {accuracy:.4f} |')
  pathlib.Path(out_path).write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest='command', required=True)
  export_parser = commands.add_parser('export')
  export_parser.add_argument('transformed_examples')
  export_parser.add_argument('npz')
  sweep_parser = commands.add_parser('sweep')
  sweep_parser.add_argument('npz')
  sweep_parser.add_argument('results')
  sweep_parser.add_argument('--prefix', default='', help='Only the variants named so.')
  sweep_parser.add_argument('--encoder', help='encoder.keras of a pipeline run, for the '
                            'variants that start from it (labels*_p*, len128_*_p*)')
  sweep_parser.add_argument('--tokens', help="embed's token embeddings (.npy), for the variants "
                            'that start from them (*_svd*)')
  sweep_parser.add_argument('--save_encoders', help='A folder: each variant that pretrains saves '
                            'its encoder there as NAME.keras')
  commands.add_parser('report').add_argument('results')
  embed_parser = commands.add_parser('embed')
  embed_parser.add_argument('npz')
  embed_parser.add_argument('out', help='Where to write the [vocabulary, width] array (.npy)')
  for flag, default in (('width', 128), ('window', 4), ('vocab', 20000)):
    embed_parser.add_argument(f'--{flag}', type=int, default=default)
  probe_parser = commands.add_parser('probe')
  probe_parser.add_argument('npz')
  probe_parser.add_argument('encoder', help="A PretrainTrainer's encoder.keras")
  probe_parser.add_argument('out', help='Markdown table to write')
  probe_parser.add_argument('--local_window', type=int, default=0, help='As run --local_window')
  run_parser = commands.add_parser('run')
  run_parser.add_argument('data')
  run_parser.add_argument('--name', required=True)
  for flag, default in (('pre_steps', 1500), ('layers', 2), ('hidden', 128), ('heads', 2),
                        ('inter', 512), ('bs', 64), ('ft_steps', 900), ('ft_epochs', 6),
                        ('vocab', 20000), ('checks', 6), ('seed', 0), ('ngram_buckets', 0),
                        ('ngrams_only', 0), ('separate_losses', 0), ('train_reviews', 0),
                        ('untied', 0), ('pre_ln', 0), ('jit', 0), ('length', 0), ('local_window', 0),
                        ('negatives', 0), ('freeze_tokens', 0)):
    run_parser.add_argument(f'--{flag}', type=int, default=default)
  for flag, default in (('pre_lr', 1e-3), ('pre_dropout', 0.1), ('ft_lr', 3e-4),
                        ('pretrained_share', 1.0), ('mask_sentiment', 0.0), ('distill_weight', 1.0)):
    run_parser.add_argument(f'--{flag}', type=float, default=default)
  run_parser.add_argument('--ft_dropout', type=float)
  run_parser.add_argument('--label_seed', type=int, help='Draws the --train_reviews whose labels '
                          'masking and fine-tuning know (default: --seed)')
  run_parser.add_argument('--encoder', help='A pretrained encoder.keras to fine-tune, instead of pretraining')
  run_parser.add_argument('--tokens', help="Initial token embeddings: `embed`'s .npy")
  run_parser.add_argument('--save_encoder', help='Where to save the encoder.keras after pretraining')
  run_parser.add_argument('--keep', choices=('all', 'embeddings', 'all_but_tokens', 'all_centered'),
                          default='all',
                          help='What of --encoder to fine-tune from; the rest starts random')
  run_parser.add_argument('--objective', choices=sorted(_CURVES), default='mlm',
                          help="Pretraining's: masked-LM, replaced-token detection (ELECTRA), "
                               'matching halves of reviews, masked-LM on halves matched so, or the '
                               "classifier's on an n-gram teacher's soft labels (distill)")
  run_parser.add_argument('--teacher', choices=sorted(_TEACHER_C), default='tokens',
                          help="distill's teacher: a logistic regression on the encoder's token "
                               "unigrams and bigrams, or NBSVM on Transform's n-grams (the "
                               "classifier's n-gram part)")
  run_parser.add_argument('--pooling', choices=('cls', 'mean'), default='cls')
  run_parser.add_argument('--positions', choices=('learned', 'sinusoid'), default='learned',
                          help='Initial position embeddings: random, or see _init_positions_sinusoidally')
  args = parser.parse_args()
  if args.command == 'export':
    export(args.transformed_examples, args.npz)
  elif args.command == 'sweep':
    sweep(args.npz, args.results, args.prefix, args.encoder, args.tokens, args.save_encoders)
  elif args.command == 'report':
    report(args.results)
  elif args.command == 'embed':
    embed(args.npz, args.out, args.width, args.window, args.vocab)
  elif args.command == 'probe':
    probe(args.npz, args.encoder, args.out, args.local_window)
  else:
    print(json.dumps(run(args)), flush=True)


if __name__ == '__main__':
  main()
