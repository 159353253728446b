"""The account layer: sign-in, projects, keys and the usage dashboard (Flask)."""
