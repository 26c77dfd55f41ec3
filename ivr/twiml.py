"""The TwiML the hotline answers Twilio's voice webhooks with (twilio's ``VoiceResponse``).

Owns the call-control documents: connecting the call's audio to the gateway's websocket
(``<Connect action=…><Stream>`` with a per-call token as a ``<Parameter>``; Twilio fetches the
``action`` URL when the gateway closes the stream, which is how the next step is chosen), speaking
with Twilio's voices (``<Say language="zh-CN|en-US">``, inside ``<Gather input="dtmf">`` when a
number may be keyed in), transferring to agents (``<Enqueue>`` a
queue, or ``<Dial>`` a number or SIP address, the conversation id in a SIP header), polite
rejection and hang-up.

Must not know the call flow, recognisers or the dialogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from twilio.twiml.voice_response import Connect, Dial, Gather, VoiceResponse

SAY_LANGUAGES = {"zh": "zh-CN", "en": "en-US"}
TOKEN_PARAMETER = "call_token"
GATHER_TIMEOUT = 3
"""Seconds ``<Gather>`` waits for the first key after the prompt, and between keys."""


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """Where transferred calls go: exactly one of a Twilio queue, a phone number or a SIP address."""

    queue: str | None = None
    number: str | None = None
    sip: str | None = None
    caller_id: str | None = None
    """Shown to the agent's phone on ``<Dial>`` (must be a number of the account); default: the caller's."""
    dial_timeout: int = 30

    def describe(self) -> str:
        if self.queue:
            return f"queue {self.queue}"
        return f"number {self.number}" if self.number else f"SIP {self.sip}"


def say_language(language: str) -> str:
    return SAY_LANGUAGES.get(language, SAY_LANGUAGES["zh"])


def connect_stream(
    stream_url: str,
    action_url: str,
    token: str,
    *,
    say: str | None = None,
    language: str = "zh",
    gather_url: str | None = None,
    num_digits: int | None = None,
) -> str:
    """Listen to the caller on the gateway's websocket (after speaking ``say`` with Twilio's voice).

    With ``gather_url`` (a prompt asking for a number, or reading one back) the prompt is spoken
    inside ``<Gather input="dtmf" finishOnKey="#">``: keys pressed while it plays, or within
    :data:`GATHER_TIMEOUT` seconds of each other, are posted there as ``Digits``; without keys
    Twilio goes on to the ``<Connect><Stream>``, where the caller may speak (or key) the answer."""
    response = VoiceResponse()
    if say and gather_url:
        gather = Gather(
            input="dtmf",
            finish_on_key="#",
            timeout=GATHER_TIMEOUT,
            action=gather_url,
            method="POST",
            num_digits=num_digits,
        )
        gather.say(say, language=say_language(language))
        response.append(gather)
    elif say:
        response.say(say, language=say_language(language))
    connect = Connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    stream.parameter(name=TOKEN_PARAMETER, value=token)
    response.append(connect)
    return str(response)


def transfer(
    target: AgentTarget, *, say: str | None, language: str, conversation_id: str | None, action_url: str | None = None
) -> str:
    """Put the caller through to an agent, after ``say`` when the prompt was not streamed already."""
    response = VoiceResponse()
    if say:
        response.say(say, language=say_language(language))
    if target.queue:
        response.enqueue(target.queue)
    else:
        dial = Dial(timeout=target.dial_timeout, caller_id=target.caller_id, action=action_url, method="POST")
        if target.number:
            dial.number(target.number)
        else:
            assert target.sip is not None
            address = target.sip
            if conversation_id:  # the agent's desktop can open the conversation from this header
                address += ("&" if "?" in address else "?") + f"X-Conversation-Id={quote(conversation_id)}"
            dial.sip(address)
        response.append(dial)
    return str(response)


def hang_up(*, say: str | None, language: str) -> str:
    response = VoiceResponse()
    if say:
        response.say(say, language=say_language(language))
    response.hangup()
    return str(response)


def reject(say: str, language: str) -> str:
    """A nuisance call: a short polite sentence, then hang up (the caller is answered, so it is
    clear the line works; ``<Reject>`` would sound like a fault)."""
    return hang_up(say=say, language=language)
