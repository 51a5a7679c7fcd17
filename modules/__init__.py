"""User code that TFX runs inside Transform and the Trainers (shipped to workers on its own)."""
