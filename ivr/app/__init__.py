"""The composition root: builds and wires every part from one config; nothing but the CLI
imports it. :mod:`ivr.app.server` starts the parts and runs them (``ivr serve``);
:mod:`ivr.app.calls` is what the server does with each FastAGI call."""
