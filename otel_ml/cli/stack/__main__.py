"""``python -m otel_ml.cli.stack``: how `stack up --detach` starts its background runner."""

import sys

from otel_ml.cli.stack.command import main

sys.exit(main())
