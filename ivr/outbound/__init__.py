"""Calls the server places: booked jobs (callbacks, surveys) in :mod:`ivr.outbound.jobs`, the
AMI dialler (:mod:`ivr.outbound.dialer`), answered calls (:mod:`ivr.outbound.answer`) and
campaigns with their CLI (:mod:`ivr.outbound.campaigns`, :mod:`ivr.outbound.cli`)."""
