"""``python -m mbrl``: the ``mbrl`` command line."""

import sys

from mbrl.cli import main

if __name__ == "__main__":
    sys.exit(main())
