import sys

from caplm.report.cli import main

sys.exit(main())
