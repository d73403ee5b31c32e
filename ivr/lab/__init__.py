"""A real Asterisk for development and end-to-end tests: a Debian sid chroot plus SIPp.

``python -m ivr.lab up|down|status|cli|call|load`` or, from tests, :class:`Lab`.
"""

from __future__ import annotations

from ivr.errors import LabError
from ivr.lab.chroot import LabPaths
from ivr.lab.lab import Lab, LabStatus
from ivr.lab.sipp import CallResult, CallSpec, LoadResult

__all__ = ["CallResult", "CallSpec", "Lab", "LabError", "LabPaths", "LabStatus", "LoadResult"]
