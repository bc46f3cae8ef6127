"""Overrides that make a real `python -m ablate` job take a second or two: a tiny model on a tiny shapes set."""

TINY = [
    "train.max_steps=3", "train.batch_size=4", "train.log_every=1", "train.warmup_steps=0", "eval.batch_size=8",
    "data.shapes.num_train=24", "data.shapes.num_val=6", "model.backbone.widths=[8,16]", "model.hidden_dim=32",
    "model.dim_feedforward=64", "model.enc_layers=1", "model.dec_layers=2", "model.num_queries=6",
    "model.detr_num_queries=4", "train.num_threads=1",
]
