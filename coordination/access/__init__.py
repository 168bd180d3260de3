"""Users, units and who may see which case."""
