from kamiyo_mcp.cli import main

raise SystemExit(main())
