"""Channel adapters: one module per channel behind one small interface.

Each adapter turns what its channel delivers into a normalised :class:`store.InboundMessage`,
hands it to the gateway's inbound handler (which persists it before anything else happens),
and turns outbound messages back into its wire format.

Must not know about dialogue, NLU or the database: an adapter only sees the inbound handler and
the messages it returns.
"""

from channels.base import DeliveryFailed, InboundHandler, InputChannel, InvalidInbound, MediaSink, OutputChannel
from channels.rest import RestInput

__all__ = [
    "DeliveryFailed",
    "InboundHandler",
    "InputChannel",
    "InvalidInbound",
    "MediaSink",
    "OutputChannel",
    "RestInput",
]
