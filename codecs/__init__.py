"""dvo codecs: tile-compressed binary FITS tables."""
