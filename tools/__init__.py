"""dvo tools."""
