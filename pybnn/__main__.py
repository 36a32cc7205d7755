"""`python -m pybnn ...` is the `pybnn` command."""
import sys

from .cli import main

sys.exit(main())
