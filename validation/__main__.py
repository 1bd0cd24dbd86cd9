"""``python -m validation``: see :mod:`validation.runner` (the functions live there so that
worker processes can import them)."""

import sys

from validation.runner import main

if __name__ == "__main__":
    sys.exit(main())
