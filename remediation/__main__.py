"""``python -m remediation``: see ``remediation.cli``."""

import sys

from remediation.cli import main

sys.exit(main())
