"""dvo skytable."""
