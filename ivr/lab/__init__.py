"""A real Asterisk for development and end-to-end tests: a Debian sid chroot plus SIPp.

``python -m ivr.lab up|down|status|cli|call|load`` or, from tests, :class:`Lab`.
"""

from __future__ import annotations

from ivr.errors import LabError
from ivr.lab.lab import Lab, LabStatus
from ivr.lab.paths import LabPaths
from ivr.lab.sipp import CallResult, LoadResult
from ivr.lab.sipp_scenarios import CallSpec

__all__ = ["CallResult", "CallSpec", "Lab", "LabError", "LabPaths", "LabStatus", "LoadResult"]
