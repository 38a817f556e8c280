"""Allow ``python -m mdmr_provision``."""

import sys

try:
    from mdmr_provision.cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI is still being imported
    print("mdmr-provision: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
