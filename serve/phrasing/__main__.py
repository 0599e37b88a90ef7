"""``python -m serve.phrasing --backend embedded --n 30``: the measuring command (measure.py)."""

from serve.phrasing.measure import main

raise SystemExit(main())
