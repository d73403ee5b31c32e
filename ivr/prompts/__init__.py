"""Prompt audio: text-to-speech into files Asterisk can play (:mod:`ivr.prompts.tts`)."""
