"""Helpers the test modules share: servers on loopback, configuration, sample data.

The test modules import them from here (``from support.x import ...``), never from one
another nor from conftest; the shared fixtures are in :mod:`support.fixtures`, which
``tests/conftest.py`` registers as a plugin.
"""
