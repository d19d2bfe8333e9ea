"""API keys for integrators: creation (shown once), listing, revocation, lookup, and API-call usage."""
