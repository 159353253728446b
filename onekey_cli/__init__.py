"""The `onekey` command: starts the components and speaks to the core as an operator."""
