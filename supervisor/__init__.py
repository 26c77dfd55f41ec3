"""Child processes the gateway runs for itself: the embedded MongoDB and Rasa servers, the
cluster's gateways and its private nginx, and the health checks that keep a failing backend out
of nginx's rotation.

Owns starting a server in its own process group, waiting until it answers, and stopping it
(and anything it forked). Must not know what the servers are for.
"""

from supervisor.child import ChildProcess, ChildStartError, free_port

__all__ = ["ChildProcess", "ChildStartError", "free_port"]
