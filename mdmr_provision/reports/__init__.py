"""Reports for people and machines: the exit-criteria matrix and evidence."""
