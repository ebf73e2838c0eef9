"""A small trainable CNN on the fast engine."""
