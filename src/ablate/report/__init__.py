"""Ablation reports from run files: tables, figures, convergence, attention maps (docs/run_files.md)."""

from ablate.report.build import write_report
from ablate.report.gather import METRICS, NoJobsFound, gather, gather_wandb, load_curves
from ablate.report.paper import paper_ap, paper_row
from ablate.report.tables import format_table, summarize, write_tables

__all__ = [
    "METRICS", "NoJobsFound", "format_table", "gather", "gather_wandb", "load_curves", "paper_ap", "paper_row",
    "summarize", "write_report", "write_tables",
]
