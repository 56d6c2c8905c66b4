"""Allow ``python -m minirnn``."""

from .cli import main

raise SystemExit(main())
