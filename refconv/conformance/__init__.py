"""Conformance suite: check other implementations against the oracle."""
