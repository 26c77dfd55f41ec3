"""Natural-language understanding: the Rasa 3.6 project, its training, its server, and the client.

Owns ``nlu/project`` (config, domain, training data), deciding when the model must be retrained,
running ``rasa run --enable-api`` from ``.venv-rasa`` as a child process, and the HTTP client
that turns text into a :class:`ParseResult` (intent, confidence, entities).

Must not know about channels, the conversation store or dialogue rules: it only reads text.
Rasa runs in its own interpreter (Python 3.10, its own pins), so nothing here imports ``rasa``.
"""

from nlu.client import NluClient, NluUnavailable, OfflineNlu, ParseResult, RasaNluClient
from nlu.project import NluProject

__all__ = ["NluClient", "NluProject", "NluUnavailable", "OfflineNlu", "ParseResult", "RasaNluClient"]
