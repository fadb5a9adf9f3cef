"""Use cases: the business rules behind every RPC, transport-agnostic."""
