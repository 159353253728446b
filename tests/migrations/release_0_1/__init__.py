"""OneKey 0.1.0, the last release before schema migrations: its table declarations, frozen."""
