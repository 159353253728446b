from onekey_cli.main import main

raise SystemExit(main())
