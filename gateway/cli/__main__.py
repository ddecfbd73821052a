"""`python -m gateway.cli`: the `baton` command, as `baton serve` starts its gateway and worker processes."""

import sys

from gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
