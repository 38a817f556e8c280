"""Allow ``python -m mdmr_provision``."""

import sys

from mdmr_provision.cli import main

sys.exit(main())
