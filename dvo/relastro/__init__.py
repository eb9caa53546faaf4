"""relastro: relative astrometric calibration, proper motions and parallaxes.

See ``dvo.relastro.core.relastro`` for the algorithm and options, ``apply`` for what is
written, and ``workset`` for how a run starts (never from a previous run's Measure RA/DEC).
"""

from dvo.relastro.core import RelastroReport, relastro

__all__ = ["relastro", "RelastroReport"]
