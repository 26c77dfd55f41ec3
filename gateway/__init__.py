"""The composition root: settings, start-up and shutdown, the turn pipeline and the web app.

Owns wiring the layers together in the one direction data flows
(channel → store → NLU → dialogue → backoffice → outbox → channel), starting the embedded
MongoDB and Rasa servers when no external ones are configured, and ``GET /health``.

Holds no business rules of its own: those live in the layer packages it wires.
"""

from configuration import SettingsError
from gateway.app import build_app
from gateway.runtime import Gateway, GatewayBuilder
from gateway.settings import Settings

__all__ = ["Gateway", "GatewayBuilder", "Settings", "SettingsError", "build_app"]
