"""Training- and evaluation-side readers of the prepared webdataset shards."""
