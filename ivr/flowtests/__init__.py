"""``ivr test``: flow tests that ops write (``flows/tests/<flow>.yaml``), run in-process on
the simulator, with coverage per flow; JUnit XML for CI; the reload gate that refuses a flow
whose tests fail (``flows_require_tests``).

The format is :mod:`ivr.flow.testcases`, one case runs in :mod:`ivr.runtime.flow_tests`,
coverage is :mod:`ivr.flow.coverage`. This package only puts them together: it imports the
runtime and the HTTP engine's JSON field reader, which neither the flow language nor the
runtime may import.
"""
