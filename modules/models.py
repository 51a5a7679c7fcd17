"""Keras 3 models: the BERT encoder (keras-hub), its masked-LM head and the classifier."""

from typing import Any, Dict, List, Optional

import keras
import keras_hub

from modules import config, features

# Inputs of the models built here.
MASK_POSITIONS_INPUT = 'mask_positions'
# The classifier's n-gram weights are stored divided by this (see `_ngram_logit`): the part's
# effective learning rate is this many times the encoder's. Chosen on `eval` (bench/README.md).
NGRAM_WEIGHT_SCALE = 10.0
NGRAM_WEIGHTS_LAYER = 'ngram_weights'
# Weighs the classifier's part logits into its logit; fitted on `eval`, not by gradient.
BLEND_LAYER = 'blend'


def build_encoder(vocabulary_size: int, sequence_length: int, encoder: config.EncoderConfig,
                  dropout: float, dtype_policy: Optional[str] = None) -> keras_hub.models.BertBackbone:
  """A randomly initialized BERT encoder of `encoder`'s size.

  Args:
    vocabulary_size: Number of token ids, special tokens included.
    sequence_length: Length of every input sequence.
    encoder: The encoder's size.
    dropout: Dropout rate inside the encoder's blocks while it trains.
    dtype_policy: Keras's dtype policy: 'float32', or 'mixed_bfloat16' to compute in bfloat16
      with float32 weights; None follows Keras's global policy (`keras.config.dtype_policy()`).
  """
  return keras_hub.models.BertBackbone(
      vocabulary_size=vocabulary_size,
      num_layers=encoder.num_layers,
      num_heads=encoder.num_heads,
      hidden_dim=encoder.hidden_dim,
      intermediate_dim=encoder.intermediate_dim,
      dropout=dropout,
      max_sequence_length=sequence_length,
      num_segments=1,
      dtype=dtype_policy)


def in_float32(encoder: keras_hub.models.BertBackbone) -> keras_hub.models.BertBackbone:
  """The encoder computing in float32, with its weights (which a mixed policy keeps in float32)."""
  if encoder.dtype_policy.name == 'float32':
    return encoder
  copy = type(encoder).from_config({**encoder.get_config(), 'dtype': 'float32'})
  copy.set_weights(encoder.get_weights())
  return copy


def _encode(encoder: keras_hub.models.BertBackbone, token_ids: keras.KerasTensor) -> Dict[str, Any]:
  """Runs the encoder on one segment of ids; padding comes from [PAD]."""
  return encoder({
      'token_ids': token_ids,
      'segment_ids': keras.ops.zeros_like(token_ids),
      'padding_mask': keras.ops.not_equal(token_ids, features.PAD_ID),
  })


def build_masked_lm(encoder: keras_hub.models.BertBackbone, num_predictions: int,
                    tie_word_embeddings: bool) -> keras.Model:
  """Encoder + masked-LM head: logits only at the masked positions, [batch, predictions, vocab].

  The head computes in the encoder's dtype policy; the logits are float32.

  Args:
    encoder: The BERT encoder to pretrain.
    num_predictions: Masked positions per sequence.
    tie_word_embeddings: Project onto the vocabulary with the encoder's token embedding, as
      BERT does; False gives the head an output embedding of its own, so that pretraining
      does not shape the token embedding that fine-tuning starts from into a token predictor.
  """
  sequence_length = encoder.max_sequence_length
  token_ids = keras.Input((sequence_length,), dtype='int64', name=features.TOKEN_IDS_KEY)
  positions = keras.Input((num_predictions,), dtype='int64', name=MASK_POSITIONS_INPUT)
  sequence = _encode(encoder, token_ids)['sequence_output']
  logits = _FlatMaskedLMHead(
      vocabulary_size=encoder.vocabulary_size,
      token_embedding=encoder.token_embedding if tie_word_embeddings else _output_embedding(encoder),
      intermediate_activation='gelu',
      dtype=encoder.dtype_policy,
      name='masked_lm_head')(sequence, mask_positions=positions)
  logits = keras.ops.cast(logits, 'float32')
  return keras.Model({features.TOKEN_IDS_KEY: token_ids, MASK_POSITIONS_INPUT: positions},
                     logits, name='masked_lm')


def _output_embedding(encoder: keras_hub.models.BertBackbone) -> keras.layers.Embedding:
  """The untied masked-LM head's projection onto the vocabulary: [vocabulary, width], as the
  token embedding, not keras-hub's [width, vocabulary] kernel.

  XLA's CPU compiler computes the gradient of a [vocabulary, width] projection as one matmul of
  the logits' gradient and the hidden vectors; of a [width, vocabulary] one it multiplies them
  in the other order, which its oneDNN call runs slower (bench/README.md).
  """
  embedding = keras.layers.Embedding(
      encoder.vocabulary_size, encoder.hidden_dim, embeddings_initializer='glorot_uniform',
      dtype=encoder.dtype_policy, name='masked_lm_output_embedding')
  embedding.build()
  return embedding


class _FlatMaskedLMHead(keras_hub.layers.MaskedLMHead):
  """keras-hub's masked-LM head with its projection onto the vocabulary as one 2-D matmul.

  The same outputs and gradients as keras-hub's head given the same weights (untied, its kernel
  is the transpose of `_output_embedding`'s). keras-hub multiplies [batch, predictions, width]
  by the transposed token embedding (or its own kernel, untied); flattened to [batch *
  predictions, width], XLA's CPU compiler runs it as one faster matmul (bench/README.md). Its
  bias's gradient is a matmul (`_add_bias`).
  """

  def call(self, inputs, mask_positions):
    hidden = self.masked_hidden(inputs, mask_positions)
    flat = keras.ops.reshape(hidden, (-1, keras.ops.shape(hidden)[-1]))
    # The token embedding (the encoder's, tied, or `_output_embedding`) and the bias are cast by
    # hand: neither is cast to a mixed-precision policy's compute dtype here.
    logits = _times_transposed(flat, keras.ops.cast(self.token_embedding.embeddings, self.compute_dtype))
    logits = _add_bias(logits, keras.ops.cast(self._bias, self.compute_dtype))
    return keras.ops.reshape(logits, (-1, keras.ops.shape(hidden)[1], self.vocabulary_size))

  def masked_hidden(self, inputs, mask_positions):
    """[batch, predictions, width]: the head's hidden vectors at the masked positions of the
    sequence output `inputs`, which it projects onto the vocabulary."""
    if keras.config.backend() == 'tensorflow':
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      # As keras-hub: TensorFlow's take_along_axis cannot broadcast a dynamic batch.
      gathered = tf.gather(inputs, mask_positions, batch_dims=1)
    else:
      gathered = keras.ops.take_along_axis(inputs, keras.ops.expand_dims(mask_positions, -1), axis=1)
    return self._intermediate_layer_norm(self._intermediate_dense(gathered))


def _times_transposed(rows, embeddings):
  """`rows` ([rows, width]) times `embeddings` ([vocabulary, width]) transposed: [rows, vocabulary].

  On TensorFlow, one matmul that transposes its operand itself. XLA's CPU compiler runs a bfloat16
  matmul of an operand transposed beforehand in float32, so under `mixed_bfloat16` the head's
  logits and its hidden vectors' gradient would lose bfloat16's speed (bench/README.md).
  """
  if keras.config.backend() == 'tensorflow':
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.matmul(rows, embeddings, transpose_b=True)
  return keras.ops.matmul(rows, keras.ops.transpose(embeddings))


@keras.ops.custom_gradient
def _add_bias(rows, bias):
  """`rows` ([rows, vocabulary]) + `bias`, with the bias's gradient summed over the rows by a matmul.

  XLA's CPU compiler sums a [rows, vocabulary] gradient over the rows on one core; a matmul by
  rows of ones runs on all of them and is faster (bench/README.md). Eight rows, not one: XLA
  fuses a matrix-vector product into the loop that computes the gradient, which is far slower.
  """
  def gradient(*args, upstream=None):
    upstream = args[0] if upstream is None else upstream
    ones = keras.ops.ones((8, keras.ops.shape(upstream)[0]), upstream.dtype)
    return upstream, keras.ops.matmul(ones, upstream)[0]
  return rows + bias, gradient


class MaskedLMCrossEntropy(keras.losses.Loss):
  """Sparse categorical cross-entropy from logits, computed for XLA's CPU compiler.

  The same values and gradients as `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.
  XLA's CPU compiler runs a row max over floats several times slower than a row sum; the max of
  integer keys that order as the floats do (`_row_max`) gives the same shift as fast as a sum.
  The gradient, softmax minus one-hot, is written out: derived by XLA, the label logit's
  gradient fills a zero tensor of the logits' size. Timings in bench/README.md.
  """

  def __init__(self, name: str = 'masked_lm_cross_entropy', **kwargs):
    super().__init__(name=name, **kwargs)

  def call(self, y_true, y_pred):
    labels = keras.ops.cast(y_true, 'int32')

    @keras.ops.custom_gradient
    def cross_entropy(logits):
      shift = _row_max(logits)
      exps = keras.ops.exp(logits - keras.ops.expand_dims(shift, -1))
      sums = keras.ops.sum(exps, axis=-1)
      label_logits = _label_logits(labels, logits)

      def gradient(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(logits)[-1], dtype=logits.dtype)
        return (exps / keras.ops.expand_dims(sums, -1) - one_hot) * keras.ops.expand_dims(upstream, -1)
      return keras.ops.log(sums) + shift - label_logits, gradient
    return cross_entropy(y_pred)


def _row_max(logits):
  """The max of `logits` over its last axis; not NaN-propagating (a NaN logit makes the loss NaN anyway)."""
  if keras.config.backend() != 'tensorflow':
    return keras.ops.max(logits, axis=-1)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  # A float's bits as int32 order as the float does for positive floats and in reverse for
  # negative ones; flipping all but the sign bit of the negative ones orders every key as its float.
  # The flip is its own inverse.
  def flip_negatives(bits):
    return tf.bitwise.bitwise_xor(bits, tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 31), 0x7FFFFFFF))
  keys = flip_negatives(tf.bitcast(tf.cast(logits, tf.float32), tf.int32))
  return tf.cast(tf.bitcast(flip_negatives(tf.reduce_max(keys, axis=-1)), tf.float32), logits.dtype)


class MaskedTokenAccuracy(keras.metrics.MeanMetricWrapper):
  """How often the label's logit is the highest: sparse categorical accuracy without argmax.

  A tie with another logit counts as a hit. It compares the label's logit with the row's
  maximum instead of taking an argmax over the vocabulary, which slows the training step
  measurably (bench/README.md).
  """

  def __init__(self, name: str = 'masked_accuracy', dtype=None):
    super().__init__(fn=_label_logit_is_highest, name=name, dtype=dtype)
    self._direction = 'up'

  def get_config(self):
    return {'name': self.name, 'dtype': self.dtype}


def _label_logit_is_highest(labels, logits):
  """1.0 where the label's logit is the highest of `logits` ([..., vocabulary]), else 0.0."""
  label_logits = _label_logits(keras.ops.cast(labels, 'int32'), logits)
  return keras.ops.cast(label_logits >= keras.ops.max(logits, axis=-1), 'float32')


def _label_logits(labels, logits):
  """[...]: each label's logit, from `logits` ([..., vocabulary]) and int32 `labels` ([...])."""
  return keras.ops.squeeze(keras.ops.take_along_axis(logits, keras.ops.expand_dims(labels, -1), axis=-1), -1)


def build_classifier(encoder: keras_hub.models.BertBackbone, dropout: float,
                     ngram_buckets: int = 0) -> keras.Model:
  """Encoder + pooled [CLS] head, plus a linear model of the review's n-grams: one logit per review.

  Each part computes a logit of its own; the classifier's logit is their weighted sum (layer
  BLEND_LAYER, which gradients do not train). Train the parts with `part_logits`, each on the
  labels alone, then fit the blend on held-out reviews. Trained as one sum instead, the fast
  n-gram part and the encoder share the fit of the training set between them, and the sum
  generalized worse than the n-gram part alone (bench/README.md).

  Args:
    encoder: The (pretrained or random) BERT encoder.
    dropout: Dropout before the [CLS] head's output.
    ngram_buckets: Hash buckets of Transform's `ngram_ids`; 0 leaves the n-gram part out.
  """
  token_ids = keras.Input((encoder.max_sequence_length,), dtype='int64', name=features.TOKEN_IDS_KEY)
  pooled = _encode(encoder, token_ids)['pooled_output']
  pooled = keras.layers.Dropout(dropout)(pooled)
  part_logits = [keras.layers.Dense(1, name='sentiment_logit')(pooled)]
  model_inputs = {features.TOKEN_IDS_KEY: token_ids}
  if ngram_buckets:
    shape = (features.MAX_NGRAMS_PER_REVIEW,)
    ngram_ids = keras.Input(shape, dtype='int64', name=features.NGRAM_IDS_KEY)
    log_ratios = keras.Input(shape, dtype='float32', name=features.NGRAM_LOG_RATIOS_KEY)
    part_logits.append(_ngram_logit(ngram_ids, log_ratios, ngram_buckets))
    model_inputs.update({features.NGRAM_IDS_KEY: ngram_ids,
                         features.NGRAM_LOG_RATIOS_KEY: log_ratios})
  # Until fitted, the blend is the plain sum of the parts.
  logit = keras.layers.Dense(1, kernel_initializer='ones', trainable=False, name=BLEND_LAYER)(
      keras.ops.concatenate(part_logits, axis=1))
  return keras.Model(model_inputs, logit, name='classifier')


def part_logits(classifier: keras.Model) -> keras.Model:
  """The classifier's parts before the blend: [batch, parts] logits, the encoder's first."""
  return keras.Model(classifier.input, classifier.get_layer(BLEND_LAYER).input, name='part_logits')


def _ngram_logit(ngram_ids: keras.KerasTensor, log_ratios: keras.KerasTensor,
                 ngram_buckets: int) -> keras.KerasTensor:
  """NBSVM's linear model: the sum of the review's n-gram weights, each times its log-count ratio.

  Padding has ratio 0 and adds nothing. Each weight is stored divided by NGRAM_WEIGHT_SCALE:
  Adam moves a weight by about the learning rate per step whatever its gradient, so this part
  learns that much faster than the encoder; a sparse linear model needs it to fit within the
  fine-tuning steps.
  """
  weights = keras.layers.Embedding(ngram_buckets, 1, embeddings_initializer='zeros',
                                   name=NGRAM_WEIGHTS_LAYER)(ngram_ids)
  return NGRAM_WEIGHT_SCALE * keras.ops.sum(keras.ops.squeeze(weights, -1) * log_ratios, axis=1,
                                            keepdims=True)


def classifier_inputs(model: keras.Model) -> List[str]:
  """Names of the transformed features the classifier reads."""
  return [tensor.name for tensor in model.inputs]


def optimizer(learning_rate: float, total_steps: int, warmup_fraction: float,
              weight_decay: float) -> keras.optimizers.Optimizer:
  """AdamW with linear warm-up then cosine decay to zero over `total_steps`."""
  warmup_steps = max(1, int(total_steps * warmup_fraction))
  schedule = keras.optimizers.schedules.CosineDecay(
      initial_learning_rate=0.0,
      decay_steps=max(1, total_steps - warmup_steps),
      warmup_target=learning_rate,
      warmup_steps=warmup_steps)
  return keras.optimizers.AdamW(
      learning_rate=schedule, weight_decay=weight_decay, global_clipnorm=1.0)
