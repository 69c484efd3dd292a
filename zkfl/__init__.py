"""zkfl: verifiable federated learning.

Data flow, one folder per step: client (``zkfl.middleware``) -> broker
(``zkfl.middleware.transport``) -> verifier (``zkfl.contracts``, proofs from
``zkfl.prover`` over ``zkfl.circuits``) -> aggregator (``zkfl.aggregator``) -> chain ->
dashboard (``zkfl.dashboard``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from zkfl.middleware.client import Client


def __getattr__(name: str) -> Any:
    # Lazy: `import zkfl` stays cheap (torch and ezkl load only when a client is made).
    if name == "Client":
        from zkfl.middleware.client import Client

        return Client
    raise AttributeError(name)


__all__ = ["Client", "__version__"]
