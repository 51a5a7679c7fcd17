"""Names of the files the run functions write into their artifacts, beside what TFX expects.

Code outside the Trainers (the progress printer, the report, the benchmarks, the tests) opens
these files by name; this module imports nothing, so it need not load Keras to know them.
"""

# In a ModelRun: how training went (step timing, the metrics of each epoch); see `training.fit`.
TRAINING_STATS_FILE = 'training_stats.json'
# In the ClassifierTrainer's ModelRun: the blend's weights and each part's `eval` accuracy.
BLEND_FILE = 'blend.json'
# In the PretrainTrainer's Model, beside the masked-LM SavedModel: the encoder (config and
# weights) in float32, because Keras 3 cannot load a SavedModel directory.
ENCODER_FILE = 'encoder.keras'
# In the PretrainTrainer's Model instead of a model, when the classifier continues from a served
# one, which holds its own encoder: why, and from which model.
PRETRAINING_SKIPPED_FILE = 'pretraining_skipped.json'
# In the ClassifierTrainer's Model, beside the serving SavedModel, so that a later run can
# warm-start from it: the Keras classifier and the token of each of its ids, one per line.
CLASSIFIER_FILE = 'classifier.keras'
VOCABULARY_FILE = 'vocabulary.txt'
