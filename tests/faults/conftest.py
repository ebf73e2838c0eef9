"""Hostile targets for tests/test_fault_injection.py: never imported by pytest itself (some crash or hang on import)."""

collect_ignore_glob = ["*.py"]
