"""``python -m ivr.lab``: see :mod:`ivr.lab.cli`."""

from __future__ import annotations

import sys

from ivr.lab.cli import main

sys.exit(main())
