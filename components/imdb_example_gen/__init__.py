"""ExampleGen for the aclImdb corpus, read as the public tarball or its extracted folder."""

from components.imdb_example_gen.component import ImdbExampleGen

__all__ = ['ImdbExampleGen']
