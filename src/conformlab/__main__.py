"""`python -m conformlab` runs the conformlab console command."""

from conformlab.cli import main

raise SystemExit(main())
