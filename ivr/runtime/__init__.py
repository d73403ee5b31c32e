"""Running calls: the interpreter walks a loaded flow on a :class:`~ivr.call.channel.Channel`
(speaking, queueing, surveys), and the simulator runs it on a scripted channel."""
