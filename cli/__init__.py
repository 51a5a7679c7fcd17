"""The `imdb-bert` command line: one entry point to the runners and to what a run produced."""
