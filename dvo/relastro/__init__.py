"""relastro: relative astrometric calibration, proper motions and parallaxes."""
