"""The account store: users, identities, projects, login tokens, sessions and the key audit."""
