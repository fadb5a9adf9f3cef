"""Pure domain types shared by every layer. No I/O, no transport, no storage."""
