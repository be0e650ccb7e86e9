"""``python -m milp`` runs the command line."""

import sys

from milp.cli.main import main

sys.exit(main())
