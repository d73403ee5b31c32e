"""What a call is, whatever carries or runs it: the :class:`~ivr.call.channel.Channel` port the
transports implement and the runtime drives, and the call record (:mod:`ivr.call.record`) the
runtime writes, the store keeps and reporting reads. Plain data and interfaces only."""
