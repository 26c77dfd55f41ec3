"""Phone hotline: Twilio voice webhooks and media streams, local speech recognition, DTMF menus,
self-service by voice and transfer to an agent.

Owns call control (TwiML), the Media Streams websocket protocol, telephone audio (μ-law,
resampling, speech detection), the recogniser interface and its engines (Vosk where a model is configured, with
grammar mode; otherwise faster-whisper base from its wheels), the prompt voice (espeak-ng), the call state
machine (greeting, barge-in, keys, no-input and not-heard re-prompts, transfer and hang-up), the
top-scenario menu, nuisance-call rejection and the call metrics. Every caller input becomes an
``InboundMessage`` on the ``voice`` channel, persisted by the gateway's handler before the turn
runs, like any channel's message.

Modules: ``audio`` (samples), ``recognizer`` (the interface), ``vosk_engine``, ``whisper_engine``,
``engines`` (which engine per language), ``phrases`` (expected answers), ``voice`` (prompt audio),
``twiml``, ``media_stream`` (one websocket), ``call`` (the state machine), ``menu`` (the IVR's own
words), ``nuisance``, ``channel`` (the ``InputChannel`` and its routes), ``cli`` (``run.py ivr``).

Must not know the dialogue's internals, NLU or the database: it sees the inbound handler, the
replies, and the narrow services the gateway wires in (``gateway/voice.py``).
"""
