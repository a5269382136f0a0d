"""`python -m voicefleet_agent start|dev`, the same as the `voicefleet-agent` command.

Job processes do not re-run a package's `__main__` (as they would `voicefleet_agent.main`,
already imported by then, with a RuntimeWarning in the log each time one starts)."""

import sys

from voicefleet_agent.main import main

sys.exit(main())
