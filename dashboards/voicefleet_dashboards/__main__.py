from voicefleet_dashboards.generate import main

raise SystemExit(main())
