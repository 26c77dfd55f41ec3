"""Phone hotline: Twilio voice webhooks, media streams and local speech recognition (Vosk).

Owns call control (TwiML), audio decoding and recognition, DTMF menus and transfer to agents.
It turns speech into text messages for the conversation store and must not know about dialogue
internals or other channels.

The walking skeleton has no voice path yet; the IVR issue builds it here.
"""
