"""relphot: relative photometric calibration of the whole database."""
