"""The staff console's own state: browser sessions and sign-in throttling, who is viewing or
typing in which conversation, agents' internal notes, canned replies, and the live feed of
store changes the console pushes to browsers; plus the console's pages and scripts (``assets/``).

Knows the store and the backoffice's staff accounts; knows nothing of aiohttp (the HTTP side is
``gateway.console_web`` / ``gateway.console_api``) and nothing of channels' wire formats.
"""

from console.service import Console
from console.sessions import ConsoleSession, SessionStore, SignInThrottle

__all__ = ["Console", "ConsoleSession", "SessionStore", "SignInThrottle"]
