"""Attention maps of a trained job, drawn into its own folder (`python -m ablate.attention JOB_DIR`).

`files` (the index and the saved maps) and `draw` need neither torch nor the model, so the report can read and
redraw them; `run` rebuilds the model from the job folder and is imported only by the command.
"""
