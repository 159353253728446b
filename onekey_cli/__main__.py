import sys

try:
    from onekey_cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the command itself is still being imported
    sys.exit(130)

sys.exit(main())
