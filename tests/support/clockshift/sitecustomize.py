"""Shifts the wall clock of a Python child process started by a time-shifted test session.

``tests/conftest.py`` puts this directory first on ``PYTHONPATH`` and sets
``IVR_TEST_CLOCK_SHIFT_S`` when the session runs with ``IVR_TEST_CLOCK_SHIFT_DAYS``, so an
``ivr serve`` or ``ivr campaign`` started by a test reads the same shifted "now" as the test.
"""

import os

_shift = os.environ.get("IVR_TEST_CLOCK_SHIFT_S")
if _shift:
    import time

    import time_machine

    _TRAVELLER = time_machine.travel(time.time() + float(_shift), tick=True)
    _TRAVELLER.start()
