"""Transports to Asterisk, and nothing else: FastAGI (:mod:`ivr.asterisk.agi`), AudioSocket
(:mod:`ivr.asterisk.audiosocket`) and the Manager Interface (:mod:`ivr.asterisk.ami`). They
implement :class:`ivr.call.channel.Channel`; they never import flows or the runtime."""
