"""Shared test helpers, imported as ``support.<module>`` (``tests/conftest.py`` puts ``tests/`` on
``sys.path``): the scripted fake Asterisk and AudioSocket peer, flow builders, instants built from
"now", the time-shift guard (``timeshift``, ``clockshift/``), speech and sound files, the
dashboard's browser page and seeded API, and the recorded AGI transcripts (``fixtures/``)."""
