"""``python -m otel_ml.cli``: the ``otel-ml`` command without its console script."""

from otel_ml.cli import main

raise SystemExit(main())
