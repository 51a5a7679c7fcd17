"""The IMDB BERT pipeline: factory, presets, corpus resolution and run summary."""
