"""airfleet's CLI exactly as ``python -m airfleet`` runs it, reporting its peak RSS at exit."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import report_peak_rss_at_exit

report_peak_rss_at_exit()
sys.argv[0] = "airfleet"
runpy.run_module("airfleet", run_name="__main__", alter_sys=True)
