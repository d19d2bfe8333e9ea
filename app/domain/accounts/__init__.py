"""Sign-up, login, tokens, and the members of an organization."""
