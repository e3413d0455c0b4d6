"""RViz content described as plain data (markers for traces, plans, the cell)."""
