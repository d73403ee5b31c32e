"""ivr: an asyncio IVR application server for Asterisk."""

__version__ = "0.1.0"
