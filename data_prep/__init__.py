"""Data preparation for avsep: stand-in data, shard preparation and downloads."""
